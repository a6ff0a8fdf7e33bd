//! [`HostPayouts`] in process: the same service calls as the public
//! payout routes, as the signed-in host.

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::Problem;

use crate::api::{HostPayouts, Payout, PayoutAccount};
use crate::service::PaymentService;

pub struct PayoutDesk {
    payments: Arc<PaymentService>,
    /// The site's public URL: the provider's onboarding returns there.
    public_url: String,
}

impl PayoutDesk {
    pub fn new(payments: Arc<PaymentService>, public_url: &str) -> Arc<Self> {
        Arc::new(PayoutDesk { payments, public_url: public_url.to_owned() })
    }
}

#[async_trait]
impl HostPayouts for PayoutDesk {
    async fn payouts(&self, user: &AuthUser) -> Result<Vec<Payout>, Problem> {
        Ok(self.payments.payouts(user.id, None, 100).await?.0)
    }

    async fn payout_account(&self, user: &AuthUser) -> Result<Option<PayoutAccount>, Problem> {
        match self.payments.payout_account_status(user.id).await {
            Ok(account) => Ok(Some(account)),
            Err(p) if p.status == 404 => Ok(None),
            Err(p) => Err(p),
        }
    }

    async fn open_payout_account(&self, user: &AuthUser) -> Result<PayoutAccount, Problem> {
        self.payments.payout_account(user.id, None, &self.public_url).await
    }
}
