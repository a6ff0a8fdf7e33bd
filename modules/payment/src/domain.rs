//! Pure rules of money: the ledger's postings for each movement, the host fee,
//! which payment state may follow which. No I/O.
//!
//! Accounts (debit positive, credit negative):
//! - `cash`: money held at the provider for the platform (asset);
//! - `host_payable:<host>`: what the platform owes a host (liability);
//! - `platform_revenue`: guest service fees, host fees, penalties;
//! - `taxes_payable`: occupancy taxes collected for the authorities.

use hometrip_kernel::money::apply_bps;
use hometrip_kernel::Id;

use crate::api::{Breakdown, PaymentStatus};

pub const CASH: &str = "cash";
pub const PLATFORM_REVENUE: &str = "platform_revenue";
pub const TAXES_PAYABLE: &str = "taxes_payable";

pub fn host_payable(host: Id) -> String {
    format!("host_payable:{host}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub account: String,
    pub amount: i64,
}

fn post(account: impl Into<String>, amount: i64) -> Posting {
    Posting { account: account.into(), amount }
}

/// The host fee on what the host earns (accommodation and cleaning).
pub fn host_fee(b: &Breakdown, bps: i64) -> i64 {
    apply_bps(b.accommodation + b.cleaning_fee, bps)
}

/// What a captured charge, less `refunded`, leaves the host and the
/// platform, as the ledger has it: the host keeps accommodation and cleaning
/// less the host fee on them, the platform the service fee and that fee
/// (both zero before capture).
pub fn earnings(charged: &Breakdown, refunded: &Breakdown, host_fee_bps: i64, captured: bool) -> (i64, i64) {
    if !captured {
        return (0, 0);
    }
    let kept = Breakdown {
        accommodation: charged.accommodation - refunded.accommodation,
        cleaning_fee: charged.cleaning_fee - refunded.cleaning_fee,
        service_fee: charged.service_fee - refunded.service_fee,
        taxes: charged.taxes - refunded.taxes,
    };
    let fee = host_fee(&kept, host_fee_bps);
    (kept.accommodation + kept.cleaning_fee - fee, kept.service_fee + fee)
}

/// A captured charge: cash in; the host's share (minus the host fee) owed to
/// the host; service fee and host fee earned; taxes owed.
pub fn charge(b: &Breakdown, host: Id, host_fee_bps: i64) -> Vec<Posting> {
    let fee = host_fee(b, host_fee_bps);
    vec![
        post(CASH, b.total()),
        post(host_payable(host), -(b.accommodation + b.cleaning_fee - fee)),
        post(PLATFORM_REVENUE, -(b.service_fee + fee)),
        post(TAXES_PAYABLE, -b.taxes),
    ]
}

/// A refund of `parts`, after `refunded_before` of `charged` came back
/// already. The host fee given back is the difference of the fees on what the
/// host keeps before and after, so any sequence of refunds ends exactly at
/// zero fee on a full refund.
pub fn refund(
    charged: &Breakdown,
    refunded_before: &Breakdown,
    parts: &Breakdown,
    host: Id,
    host_fee_bps: i64,
) -> Vec<Posting> {
    let kept = |r: &Breakdown| Breakdown {
        accommodation: charged.accommodation - r.accommodation,
        cleaning_fee: charged.cleaning_fee - r.cleaning_fee,
        ..Breakdown::default()
    };
    let after = add(refunded_before, parts);
    let fee_back = host_fee(&kept(refunded_before), host_fee_bps) - host_fee(&kept(&after), host_fee_bps);
    vec![
        post(CASH, -parts.total()),
        post(host_payable(host), parts.accommodation + parts.cleaning_fee - fee_back),
        post(PLATFORM_REVENUE, parts.service_fee + fee_back),
        post(TAXES_PAYABLE, parts.taxes),
    ]
}

/// Money sent to a host's bank account.
pub fn payout(host: Id, amount: i64) -> Vec<Posting> {
    vec![post(host_payable(host), amount), post(CASH, -amount)]
}

/// A host's cancellation penalty, kept from their future payouts.
pub fn host_penalty(host: Id, amount: i64) -> Vec<Posting> {
    vec![post(host_payable(host), amount), post(PLATFORM_REVENUE, -amount)]
}

pub fn add(a: &Breakdown, b: &Breakdown) -> Breakdown {
    Breakdown {
        accommodation: a.accommodation + b.accommodation,
        cleaning_fee: a.cleaning_fee + b.cleaning_fee,
        service_fee: a.service_fee + b.service_fee,
        taxes: a.taxes + b.taxes,
    }
}

/// Whether a refund of `parts` fits in what is left of the charge.
pub fn refundable(charged: &Breakdown, refunded_before: &Breakdown, parts: &Breakdown) -> bool {
    let after = add(refunded_before, parts);
    let each = [
        (parts.accommodation, after.accommodation, charged.accommodation),
        (parts.cleaning_fee, after.cleaning_fee, charged.cleaning_fee),
        (parts.service_fee, after.service_fee, charged.service_fee),
        (parts.taxes, after.taxes, charged.taxes),
    ];
    parts.total() > 0 && each.iter().all(|(p, a, c)| *p >= 0 && a <= c)
}

/// Whether a payment may go from `from` to `to`: provider answers and
/// webhooks can arrive in any order, and only forward moves are applied.
pub fn may_move(from: PaymentStatus, to: PaymentStatus) -> bool {
    use PaymentStatus::*;
    match from {
        Processing => to != Processing,
        RequiresAction => matches!(to, RequiresCapture | Succeeded | Failed | Canceled),
        RequiresCapture => matches!(to, Succeeded | Canceled),
        Succeeded | Failed | Canceled => false,
    }
}

/// The sum of each transaction's postings: zero when balanced.
pub fn imbalance(postings: &[Posting]) -> i64 {
    postings.iter().map(|p| p.amount).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn apply(balances: &mut HashMap<String, i64>, postings: &[Posting]) {
        for p in postings {
            *balances.entry(p.account.clone()).or_default() += p.amount;
        }
    }

    #[test]
    fn a_full_refund_gives_everything_back_and_leaves_the_host_nothing() {
        let host = Id::new();
        let b = Breakdown { accommodation: 33_333, cleaning_fee: 5_001, service_fee: 5_367, taxes: 1_667 };
        let mut balances = HashMap::new();
        apply(&mut balances, &charge(&b, host, 300));
        apply(&mut balances, &refund(&b, &Breakdown::default(), &b, host, 300));
        assert!(balances.values().all(|v| *v == 0), "{balances:?}");
    }

    proptest! {
        /// Any charge followed by any split of refunds, payouts and penalties:
        /// every transaction balances, and at the end the accounts tell the
        /// story exactly (cash = charged − refunded − paid out; the host is owed
        /// their share minus fee, minus payouts and penalties).
        #[test]
        fn every_flow_stays_balanced(
            accommodation in 0i64..10_000_000,
            cleaning in 0i64..200_000,
            service in 0i64..1_000_000,
            taxes in 0i64..500_000,
            bps in 0i64..2_000,
            cuts in proptest::collection::vec((0u32..=100, 0u32..=100, 0u32..=100, 0u32..=100), 0..4),
            payout_pct in 0i64..=100,
            penalty in 0i64..100_000,
        ) {
            let host = Id::new();
            let charged = Breakdown { accommodation, cleaning_fee: cleaning, service_fee: service, taxes };
            let mut balances = HashMap::new();
            let mut journal = vec![charge(&charged, host, bps)];
            let mut refunded = Breakdown::default();
            for (a, c, s, t) in cuts {
                let left = |total: i64, done: i64, pct: u32| (total - done) * i64::from(pct) / 100;
                let parts = Breakdown {
                    accommodation: left(charged.accommodation, refunded.accommodation, a),
                    cleaning_fee: left(charged.cleaning_fee, refunded.cleaning_fee, c),
                    service_fee: left(charged.service_fee, refunded.service_fee, s),
                    taxes: left(charged.taxes, refunded.taxes, t),
                };
                if refundable(&charged, &refunded, &parts) {
                    journal.push(refund(&charged, &refunded, &parts, host, bps));
                    refunded = add(&refunded, &parts);
                }
            }
            for postings in &journal {
                apply(&mut balances, postings);
            }
            let owed = -balances.get(&host_payable(host)).copied().unwrap_or(0);
            let paid = owed.max(0) * payout_pct / 100;
            journal.push(payout(host, paid));
            journal.push(host_penalty(host, penalty));
            apply(&mut balances, &journal[journal.len() - 2]);
            apply(&mut balances, &journal[journal.len() - 1]);
            for postings in &journal {
                prop_assert_eq!(imbalance(postings), 0);
            }
            prop_assert_eq!(balances.values().sum::<i64>(), 0);
            prop_assert_eq!(balances[CASH], charged.total() - refunded.total() - paid);
            prop_assert_eq!(-balances[TAXES_PAYABLE], charged.taxes - refunded.taxes);
            let kept = Breakdown {
                accommodation: charged.accommodation - refunded.accommodation,
                cleaning_fee: charged.cleaning_fee - refunded.cleaning_fee,
                ..Breakdown::default()
            };
            let host_share = kept.accommodation + kept.cleaning_fee - host_fee(&kept, bps);
            prop_assert_eq!(-balances[&host_payable(host)], host_share - paid - penalty);
            prop_assert_eq!(-balances[PLATFORM_REVENUE], charged.service_fee - refunded.service_fee + host_fee(&kept, bps) + penalty);
        }
    }

    #[test]
    fn payment_states_only_move_forward() {
        use PaymentStatus::*;
        assert!(may_move(Processing, Succeeded));
        assert!(may_move(RequiresAction, RequiresCapture));
        assert!(may_move(RequiresCapture, Succeeded));
        assert!(!may_move(Succeeded, RequiresCapture), "a late authorisation webhook after capture");
        assert!(!may_move(Failed, Succeeded));
        assert!(!may_move(Canceled, Succeeded));
    }
}
