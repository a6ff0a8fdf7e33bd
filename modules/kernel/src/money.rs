//! Money: an integer amount in minor units and an ISO 4217 currency. Never floats.

use serde::{Deserialize, Serialize};

/// Currencies HomeTrip prices in, with their minor-unit exponent.
pub const CURRENCIES: &[(&str, u32)] = &[
    ("EUR", 2),
    ("USD", 2),
    ("GBP", 2),
    ("CHF", 2),
    ("CAD", 2),
    ("AUD", 2),
    ("JPY", 0),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("PLN", 2),
    ("CZK", 2),
];

pub fn is_currency(code: &str) -> bool {
    CURRENCIES.iter().any(|(c, _)| *c == code)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Minor units (cents for EUR).
    pub amount: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl Money {
    pub fn new(amount: i64, currency: &str) -> Money {
        Money { amount, currency: currency.to_owned() }
    }

    pub fn zero(currency: &str) -> Money {
        Money::new(0, currency)
    }
}

/// `amount × bps / 10 000`, rounded half away from zero, without overflow for
/// any amount a stay can reach.
pub fn apply_bps(amount: i64, bps: i64) -> i64 {
    let product = i128::from(amount) * i128::from(bps);
    let half = if product >= 0 { 5_000 } else { -5_000 };
    i64::try_from((product + half) / 10_000).unwrap_or(if product >= 0 { i64::MAX } else { i64::MIN })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_points_round_half_away_from_zero() {
        assert_eq!(apply_bps(10_000, 1_000), 1_000);
        assert_eq!(apply_bps(15, 5_000), 8); // 7.5 → 8
        assert_eq!(apply_bps(14, 5_000), 7);
        assert_eq!(apply_bps(-15, 5_000), -8);
        assert_eq!(apply_bps(0, 1_234), 0);
        assert_eq!(apply_bps(i64::MAX, 10_000), i64::MAX);
    }

    #[test]
    fn currencies_are_a_closed_list() {
        assert!(is_currency("EUR"));
        assert!(!is_currency("eur"));
        assert!(!is_currency("BTC"));
    }
}
