//! The host's listings: the list with publish and unlist, the form that
//! creates and edits every field, and the photos (upload, caption, cover,
//! removal). Each calls the listing module's `HostListings` as the signed-in
//! user; someone else's listing is a 404 here.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{FieldError, Id, Problem};
use hometrip_listing::api::{Listing, ListingStatus, AMENITIES, CANCELLATION_POLICIES, PROPERTY_TYPES};

use crate::account_pages::redirect;
use crate::format;
use crate::listing_form::{form_field, ListingForm};
use crate::locale::Locale;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{posted, user_or_sign_in, NoFields};
use crate::uploads::read_upload;
use crate::Web;

/// One of the host's listings in their list.
struct ListingLine {
    id: Id,
    title: String,
    status: &'static str,
    published: bool,
    price: Option<String>,
    thumbnail: Option<String>,
    place: String,
}

#[derive(Template)]
#[template(path = "host_listings.html")]
struct ListingsPage {
    page: Chrome,
    rows: Vec<ListingLine>,
    notice: Option<&'static str>,
    /// What publishing still needs, when it was refused.
    missing: Vec<String>,
}

pub(crate) fn status_label(status: ListingStatus, locale: Locale) -> &'static str {
    let h = locale.messages().h;
    match status {
        ListingStatus::Draft => h.status_draft,
        ListingStatus::Published => h.status_published,
        ListingStatus::Unlisted => h.status_unlisted,
        ListingStatus::Suspended => h.status_suspended,
        ListingStatus::Deactivated => h.status_deactivated,
    }
}

fn line(l: &Listing, locale: Locale) -> ListingLine {
    ListingLine {
        id: l.id,
        title: if l.title.is_empty() { locale.messages().h.new_listing.to_owned() } else { l.title.clone() },
        status: status_label(l.status, locale),
        published: l.status == ListingStatus::Published,
        price: l.nightly_price.as_ref().map(|m| format::money(m, locale)),
        thumbnail: l.photos.first().map(|p| p.thumbnail_url.clone()),
        place: [l.address.city.as_str(), l.address.country.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn notice_of(req: &HttpRequest, locale: Locale) -> Option<&'static str> {
    let h = locale.messages().h;
    let done: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    match done.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str()) {
        Some("created") => Some(h.created),
        Some("saved") => Some(h.saved),
        Some("published") => Some(h.published_notice),
        Some("unlisted") => Some(h.unlisted_notice),
        Some("uploaded") => Some(h.uploaded),
        Some("calendar") => Some(h.calendar_saved),
        Some("rotated") => Some(h.rotated),
        Some("imported") => Some(h.import_added),
        Some("removed") => Some(h.removed),
        _ => None,
    }
}

async fn listings_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    status: StatusCode,
    missing: Vec<String>,
) -> HttpResponse {
    let Some(user) = ctx.visitor.user.as_ref().map(|s| &s.user) else {
        return failed(req, app, ctx, &Problem::not_found("page"));
    };
    let mine = match app.host_listings.mine(user).await {
        Ok(mine) => mine,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let page = ListingsPage {
        page: ctx.chrome(req, app, "page_view"),
        rows: mine.iter().map(|l| line(l, ctx.locale)).collect(),
        notice: if missing.is_empty() { notice_of(req, ctx.locale) } else { None },
        missing,
    };
    respond(status, page.render(), ctx)
}

/// `GET /host/listings`.
pub async fn listings(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(to_sign_in) = user_or_sign_in(&ctx, "/host/listings") {
        return *to_sign_in;
    }
    listings_page(&req, &app, &ctx, StatusCode::OK, Vec::new()).await
}

/// A photo as the edit page shows it.
struct PhotoLine {
    id: Id,
    url: String,
    caption: String,
    cover: bool,
}

#[derive(Template)]
#[template(path = "listing_form.html")]
struct FormPage {
    page: Chrome,
    /// None for a new listing.
    id: Option<Id>,
    status: &'static str,
    published: bool,
    form: ListingForm,
    photos: Vec<PhotoLine>,
    notice: Option<&'static str>,
    /// A refusal that is not one field's (an upload too large, say).
    error: Option<String>,
    errors: Vec<FieldError>,
    property_types: Vec<(&'static str, String)>,
    policies: &'static [&'static str],
    amenities: Vec<(&'static str, &'static str)>,
    currencies: Vec<&'static str>,
}

impl FormPage {
    fn field_error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| form_field(&e.field) == field).map(|e| e.message.as_str())
    }
}

fn form_page(ctx: &Context, chrome: Chrome, listing: Option<&Listing>, form: ListingForm) -> FormPage {
    let fr = ctx.locale == Locale::Fr;
    FormPage {
        page: chrome,
        id: listing.map(|l| l.id),
        status: listing.map_or("", |l| status_label(l.status, ctx.locale)),
        published: listing.is_some_and(|l| l.status == ListingStatus::Published),
        form,
        photos: listing
            .map(|l| {
                l.photos
                    .iter()
                    .enumerate()
                    .map(|(i, p)| PhotoLine {
                        id: p.id,
                        url: p.thumbnail_url.clone(),
                        caption: p.caption.clone(),
                        cover: i == 0,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        notice: None,
        error: None,
        errors: Vec::new(),
        property_types: PROPERTY_TYPES.iter().map(|t| (*t, t.replace('_', " "))).collect(),
        policies: CANCELLATION_POLICIES,
        amenities: AMENITIES.iter().map(|(key, en, f)| (*key, if fr { *f } else { *en })).collect(),
        currencies: hometrip_kernel::money::CURRENCIES.iter().map(|(c, _)| *c).collect(),
    }
}

/// `GET /host/listings/new`.
pub async fn new_form(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(to_sign_in) = user_or_sign_in(&ctx, "/host/listings/new") {
        return *to_sign_in;
    }
    let form = ListingForm::new_listing("EUR");
    let page = form_page(&ctx, ctx.chrome(&req, &app, "page_view"), None, form);
    respond(StatusCode::OK, page.render(), &ctx)
}

/// The listing if it is the user's own (anyone else's is a 404, as are ids
/// that are not ids).
pub(crate) async fn own_listing(app: &Web, ctx: &Context, raw_id: &str) -> Result<Listing, Problem> {
    let id: Id = raw_id.parse().map_err(|_| Problem::not_found("listing"))?;
    let user = &ctx.visitor.user.as_ref().ok_or_else(|| Problem::not_found("listing"))?.user;
    match app.host_listings.own(user, id).await {
        Ok(l) if l.host_id == user.id => Ok(l),
        Ok(_) => Err(Problem::not_found("listing")),
        Err(p) if p.status == 403 => Err(Problem::not_found("listing")),
        Err(p) => Err(p),
    }
}

/// What a host's form about one of their listings starts with: this
/// browser's token, a signed-in user, and the listing theirs (a 404 page
/// otherwise).
pub(crate) async fn host_form<'a, T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    app: &Web,
    ctx: &'a Context,
    raw_id: &str,
    body: &[u8],
) -> Result<(T, &'a AuthUser, Listing), Box<HttpResponse>> {
    let form: T = posted(req, app, ctx, body)?;
    let user = user_or_sign_in(ctx, "/host/listings")?;
    let listing = own_listing(app, ctx, raw_id).await.map_err(|p| Box::new(failed(req, app, ctx, &p)))?;
    Ok((form, user, listing))
}

/// `GET /host/listings/{id}/edit`.
pub async fn edit_form(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(to_sign_in) = user_or_sign_in(&ctx, req.path()) {
        return *to_sign_in;
    }
    let listing = match own_listing(&app, &ctx, &id).await {
        Ok(l) => l,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let mut page = form_page(&ctx, ctx.chrome(&req, &app, "page_view"), Some(&listing), ListingForm::of(&listing));
    page.notice = notice_of(&req, ctx.locale);
    respond(StatusCode::OK, page.render(), &ctx)
}

/// `POST /host/listings`: a new draft, then its edit page (for photos).
pub async fn create(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    save(req, app, None, body).await
}

/// `POST /host/listings/{id}/edit`.
pub async fn update(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    save(req, app, Some(id.into_inner()), body).await
}

async fn save(req: HttpRequest, app: web::Data<Web>, id: Option<String>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<NoFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let user = match user_or_sign_in(&ctx, "/host/listings") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let existing = match &id {
        Some(raw) => match own_listing(&app, &ctx, raw).await {
            Ok(l) => Some(l),
            Err(p) => return failed(&req, &app, &ctx, &p),
        },
        None => None,
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let form = ListingForm::from_pairs(&pairs);
    let saved = match form.patch(ctx.locale) {
        Err(errors) => Err(Problem::validation(errors)),
        Ok(patch) => match &existing {
            Some(l) => app.host_listings.update(user, l.id, &patch).await,
            None => app.host_listings.create(user, &patch).await,
        },
    };
    match saved {
        Ok(l) => {
            let done = if existing.is_some() { "saved" } else { "created" };
            redirect(&ctx, &format!("/host/listings/{}/edit?done={done}", l.id), Vec::new())
        }
        Err(p) if p.status == 422 || p.status == 409 => {
            let mut page = form_page(&ctx, ctx.chrome(&req, &app, "page_view"), existing.as_ref(), form);
            page.error = Some(ctx.locale.messages().h.fix_fields.to_owned());
            page.errors = if p.errors.is_empty() { vec![FieldError::new("", p.detail.clone())] } else { p.errors };
            respond(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &ctx)
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// `POST /host/listings/{id}/{publish|unlist}`: then the list, or what
/// publishing still needs (422).
pub async fn set_status(
    req: HttpRequest,
    app: web::Data<Web>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (raw_id, action) = path.into_inner();
    let (_, user, listing) = match host_form::<NoFields>(&req, &app, &ctx, &raw_id, &body).await {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let done = match action.as_str() {
        "publish" => app.host_listings.publish(user, listing.id).await.map(|_| "published"),
        "unlist" => app.host_listings.unlist(user, listing.id).await.map(|_| "unlisted"),
        _ => Err(Problem::not_found("action")),
    };
    match done {
        Ok(done) => redirect(&ctx, &format!("/host/listings?done={done}"), Vec::new()),
        Err(p) if p.status == 422 || p.status == 409 => {
            let missing = match p.errors.is_empty() {
                true => vec![p.detail.clone()],
                false => p.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect(),
            };
            listings_page(&req, &app, &ctx, StatusCode::UNPROCESSABLE_ENTITY, missing).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// The edit page again, with what went wrong with a photo.
async fn photo_refused(req: &HttpRequest, app: &Web, ctx: &Context, listing: &Listing, p: &Problem) -> HttpResponse {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let mut page = form_page(ctx, ctx.chrome(req, app, "page_view"), Some(listing), ListingForm::of(listing));
    page.error = Some(match p.errors.first() {
        Some(e) => e.message.clone(),
        None => p.detail.clone(),
    });
    respond(status, page.render(), ctx)
}

/// `POST /host/listings/{id}/photos`: a multipart form of files and its CSRF token.
pub async fn upload(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, payload: Multipart) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let upload = match read_upload(payload, "file").await {
        Ok(u) => u,
        Err(p) => {
            // Unreadable or too large: say so on the edit page when it is theirs.
            return match own_listing(&app, &ctx, &id).await {
                Ok(l) => photo_refused(&req, &app, &ctx, &l, &p).await,
                Err(not_found) => failed(&req, &app, &ctx, &not_found),
            };
        }
    };
    if !app.csrf_ok(&req, &upload.csrf) {
        let m = ctx.locale.messages();
        return crate::pages::say(&req, &app, &ctx, StatusCode::FORBIDDEN, m.form_expired_title, m.form_expired_text);
    }
    let user = match user_or_sign_in(&ctx, "/host/listings") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let listing = match own_listing(&app, &ctx, &id).await {
        Ok(l) => l,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    if upload.files.is_empty() {
        return photo_refused(&req, &app, &ctx, &listing, &Problem::field("file", ctx.locale.messages().h.add_photos))
            .await;
    }
    match app.host_listings.add_photos(user, listing.id, upload.files).await {
        Ok(_) => redirect(&ctx, &format!("/host/listings/{}/edit?done=uploaded#photos", listing.id), Vec::new()),
        Err(p) if (400..500).contains(&p.status) => photo_refused(&req, &app, &ctx, &listing, &p).await,
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

#[derive(serde::Deserialize)]
struct CaptionForm {
    #[serde(default)]
    caption: String,
}

/// `POST /host/listings/{id}/photos/{photo}/{caption|cover|remove}`.
pub async fn photo_action(
    req: HttpRequest,
    app: web::Data<Web>,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (raw_id, raw_photo, action) = path.into_inner();
    let (form, user, listing) = match host_form::<CaptionForm>(&req, &app, &ctx, &raw_id, &body).await {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let Some(photo) = raw_photo.parse::<Id>().ok().filter(|p| listing.photos.iter().any(|x| x.id == *p)) else {
        return failed(&req, &app, &ctx, &Problem::not_found("photo"));
    };
    let hl = &app.host_listings;
    let done = match action.as_str() {
        "caption" => hl.caption_photo(user, listing.id, photo, &form.caption).await.map(|_| ()),
        "remove" => hl.delete_photo(user, listing.id, photo).await,
        "cover" => {
            let order: Vec<Id> =
                std::iter::once(photo).chain(listing.photos.iter().map(|p| p.id).filter(|id| *id != photo)).collect();
            hl.order_photos(user, listing.id, &order).await.map(|_| ())
        }
        _ => Err(Problem::not_found("action")),
    };
    match done {
        Ok(()) => redirect(&ctx, &format!("/host/listings/{}/edit?done=saved#photos", listing.id), Vec::new()),
        Err(p) if (400..500).contains(&p.status) && p.status != 404 => {
            photo_refused(&req, &app, &ctx, &listing, &p).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
