//! The host's payouts and payout account (Stripe Connect Express, or the
//! simulated provider's account opened offline), over payment's
//! `HostPayouts`. The provider's onboarding returns to this page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::Id;
use hometrip_payment::api::{PayoutAccount, PayoutStatus};

use crate::account_pages::redirect;
use crate::format;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{posted, user_or_sign_in, NoFields};
use crate::Web;

struct PayoutLine {
    id: Id,
    booking_id: Id,
    amount: String,
    status: &'static str,
    due: String,
    paid: String,
}

#[derive(Template)]
#[template(path = "payouts.html")]
struct PayoutsPage {
    page: Chrome,
    account: Option<PayoutAccount>,
    /// Where the host finishes their details (a link the provider made now).
    onboarding_url: Option<String>,
    /// The provider sent the host back: its link had expired.
    link_expired: bool,
    payouts: Vec<PayoutLine>,
    error: Option<&'static str>,
}

async fn payouts_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    user: &AuthUser,
    error: Option<&'static str>,
) -> HttpResponse {
    let (payouts, account) = futures_util::join!(app.payouts.payouts(user), app.payouts.payout_account(user));
    let payouts = match payouts {
        Ok(p) => p,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let h = ctx.locale.messages().h;
    // The provider down: the payouts still show, the account says so.
    let (account, error) = match account {
        Ok(a) => (a, error),
        Err(p) if p.status >= 500 => (None, Some(h.provider_down)),
        Err(p) => return failed(req, app, ctx, &p),
    };
    let status = if error.is_some() { StatusCode::BAD_GATEWAY } else { StatusCode::OK };
    let at = |i: hometrip_kernel::time::Instant| format::instant(i, "UTC", ctx.locale);
    let payouts = payouts
        .into_iter()
        .map(|p| PayoutLine {
            id: p.id,
            booking_id: p.booking_id,
            amount: format::money(&p.amount, ctx.locale),
            status: match p.status {
                PayoutStatus::Scheduled => h.payout_scheduled,
                PayoutStatus::Paid => h.payout_paid,
                PayoutStatus::Skipped => h.payout_skipped,
            },
            due: at(p.release_at),
            paid: p.paid_at.map(&at).unwrap_or_default(),
        })
        .collect();
    let page = PayoutsPage {
        page: ctx.chrome(req, app, "page_view"),
        onboarding_url: account.as_ref().and_then(|a| a.onboarding_url.clone()).filter(|u| provider_url(app, u)),
        link_expired: req.query_string().contains("refresh=1"),
        account,
        payouts,
        error,
    };
    respond(status, page.render(), ctx)
}

/// Where a host may be sent for their details: the provider's HTTPS page,
/// or this site (the simulated provider's link leads back here).
fn provider_url(app: &Web, url: &str) -> bool {
    let own = format!("{}/", app.public_url.trim_end_matches('/'));
    url.starts_with("https://") || url.starts_with(&own)
}

/// `GET /host/payouts`: the account's state and the payouts.
pub async fn payouts(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/host/payouts") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    payouts_page(&req, &app, &ctx, user, None).await
}

/// `POST /host/payouts/account`: opens the account, or gets a fresh
/// onboarding link; the provider's page is where the host goes next.
pub async fn open_account(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<NoFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let user = match user_or_sign_in(&ctx, "/host/payouts") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    match app.payouts.open_payout_account(user).await {
        // Straight to the provider while details are missing (an absolute
        // URL of theirs); back here otherwise.
        Ok(account) => match &account.onboarding_url {
            Some(url) if provider_url(&app, url) => {
                let mut to_provider = HttpResponse::SeeOther();
                to_provider.insert_header(("location", url.as_str()));
                ctx.set_cookies(&mut to_provider, &[]);
                to_provider.finish()
            }
            _ => redirect(&ctx, "/host/payouts", Vec::new()),
        },
        Err(p) if p.status >= 500 => {
            let down = ctx.locale.messages().h.provider_down;
            payouts_page(&req, &app, &ctx, user, Some(down)).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
