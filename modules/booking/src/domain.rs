//! Pure rules of bookings: the state machine (one transition table), the
//! cancellation policies and the refund timeline. No I/O.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use hometrip_listing::api::Rate;
use hometrip_payment::api::Breakdown;

use crate::api::{BookingStatus, BookingStatus::*};

// ---- The state machine ----------------------------------------------------------

/// What can happen to a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Instant book: the charge succeeded.
    PaymentCaptured,
    /// Request to book: the card is authorised.
    PaymentAuthorized,
    /// The unpaid hold ran out.
    HoldExpired,
    HostAccepts,
    HostDeclines,
    /// The host did not answer in time.
    RequestExpired,
    GuestCancels,
    HostCancels,
    /// Check-out time passed.
    StayEnded,
}

/// Every allowed transition: `(from, action, to)`. Anything else is refused.
pub const TRANSITIONS: &[(BookingStatus, Action, BookingStatus)] = &[
    (PendingPayment, Action::PaymentCaptured, Confirmed),
    (PendingPayment, Action::PaymentAuthorized, PendingHost),
    (PendingPayment, Action::HoldExpired, Expired),
    (PendingPayment, Action::GuestCancels, CancelledByGuest),
    (PendingHost, Action::HostAccepts, Confirmed),
    (PendingHost, Action::HostDeclines, Declined),
    (PendingHost, Action::RequestExpired, Expired),
    (PendingHost, Action::GuestCancels, CancelledByGuest),
    (Confirmed, Action::GuestCancels, CancelledByGuest),
    (Confirmed, Action::HostCancels, CancelledByHost),
    (Confirmed, Action::StayEnded, Completed),
];

pub fn next(from: BookingStatus, action: Action) -> Option<BookingStatus> {
    TRANSITIONS.iter().find(|(f, a, _)| *f == from && *a == action).map(|(_, _, to)| *to)
}

/// The event published on entering `status`.
pub fn event_type(status: BookingStatus) -> &'static str {
    use crate::api::*;
    match status {
        PendingPayment => BOOKING_CREATED,
        PendingHost => BOOKING_AWAITING_HOST,
        Confirmed => BOOKING_CONFIRMED,
        Declined => BOOKING_DECLINED,
        Expired => BOOKING_EXPIRED,
        CancelledByGuest => BOOKING_CANCELLED_BY_GUEST,
        CancelledByHost => BOOKING_CANCELLED_BY_HOST,
        Completed => BOOKING_COMPLETED,
    }
}

// ---- Local time -----------------------------------------------------------------

/// `date` at `time` in `tz`, as a UTC instant. A time skipped by a DST jump
/// moves forward an hour; an ambiguous one takes the earlier instant.
pub fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
    }
}

/// Today's date where the listing is.
pub fn local_today(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

// ---- Cancellation policies --------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Flexible,
    Moderate,
    Limited,
    Firm,
    Strict,
}

impl Policy {
    pub fn parse(s: &str) -> Policy {
        match s {
            "flexible" => Policy::Flexible,
            "limited" => Policy::Limited,
            "firm" => Policy::Firm,
            "strict" => Policy::Strict,
            _ => Policy::Moderate,
        }
    }
}

/// The moments a refund depends on.
#[derive(Debug, Clone, Copy)]
pub struct StayTimes {
    pub booked_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Check-in day at the listing's check-in time.
    pub check_in_at: DateTime<Utc>,
    pub nights: u32,
}

/// `amount × num ÷ den`, rounded half up, exact in i128.
fn share(amount: i64, num: i64, den: i64) -> i64 {
    if den <= 0 {
        return 0;
    }
    let v = (i128::from(amount) * i128::from(num) * 2 + i128::from(den)) / (2 * i128::from(den));
    i64::try_from(v).unwrap_or(amount)
}

/// The 24-hour grace period: a cancellation within 24 hours of confirmation
/// is refunded in full when the confirmation came at least 7 days before check-in.
pub fn grace_period_until(t: &StayTimes) -> Option<DateTime<Utc>> {
    let confirmed = t.confirmed_at?;
    (t.check_in_at - confirmed >= Duration::days(7)).then(|| confirmed + Duration::hours(24))
}

/// Nights begun by `now` (0 before check-in).
fn nights_begun(t: &StayTimes, now: DateTime<Utc>) -> i64 {
    if now < t.check_in_at {
        return 0;
    }
    ((now - t.check_in_at).num_seconds() / 86_400 + 1).min(i64::from(t.nights))
}

/// What the guest gets back when they cancel at `now`.
pub fn guest_refund(policy: Policy, rate: Rate, charge: &Breakdown, t: &StayTimes, now: DateTime<Utc>) -> Breakdown {
    if grace_period_until(t).is_some_and(|until| now < until) && now < t.check_in_at {
        return *charge;
    }
    let before = t.check_in_at - now;
    let a = charge.accommodation;
    let n = i64::from(t.nights.max(1));
    let full = Duration::MAX;
    // The accommodation refunded, and whether the rule is a full refund.
    let (refund_accommodation, all) = match (rate, policy) {
        (Rate::NonRefundable, _) => (0, false),
        (_, Policy::Flexible) if before > Duration::hours(24) => (a, true),
        (_, Policy::Flexible) => {
            // The host keeps the nights begun plus one.
            let kept = share(a, (nights_begun(t, now) + 1).min(n), n);
            (a - kept, false)
        }
        (_, Policy::Moderate) if before > Duration::days(5) => (a, true),
        (_, Policy::Moderate) => {
            // The nights begun plus one, and half of the nights after them.
            let kept_nights = share(a, (nights_begun(t, now) + 1).min(n), n);
            let kept = kept_nights + share(a - kept_nights, 1, 2);
            (a - kept, false)
        }
        (_, Policy::Limited | Policy::Firm | Policy::Strict) => {
            let full_until = match policy {
                Policy::Limited => Duration::days(14),
                Policy::Firm => Duration::days(30),
                _ => full,
            };
            let strict_full =
                policy == Policy::Strict && now - t.booked_at < Duration::hours(48) && before > Duration::days(14);
            if before > full_until || strict_full {
                (a, true)
            } else if before > Duration::days(7) {
                (share(a, 1, 2), false)
            } else {
                (0, false)
            }
        }
    };
    if all && now < t.check_in_at {
        return *charge;
    }
    // The service fee and the taxes follow the nights; cleaning comes back
    // whole until check-in.
    let proportional = |part: i64| if a > 0 { share(part, refund_accommodation, a) } else { 0 };
    Breakdown {
        accommodation: refund_accommodation,
        cleaning_fee: if now < t.check_in_at { charge.cleaning_fee } else { 0 },
        service_fee: proportional(charge.service_fee),
        taxes: proportional(charge.taxes),
    }
}

/// The instants at which a guest's refund can change, after `now`.
fn cutoffs(t: &StayTimes, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let ci = t.check_in_at;
    let mut all = vec![
        ci - Duration::days(30),
        ci - Duration::days(14),
        ci - Duration::days(7),
        ci - Duration::days(5),
        ci - Duration::hours(24),
        t.booked_at + Duration::hours(48),
        ci,
    ];
    all.extend((1..=i64::from(t.nights)).map(|d| ci + Duration::days(d)));
    if let Some(until) = grace_period_until(t) {
        all.push(until);
    }
    all.retain(|c| *c > now);
    all.sort();
    all.dedup();
    all
}

/// One step of the timeline, before money formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    pub refund: i64,
}

/// What a guest's cancellation would bring back, from `now` on: each step is
/// the refund `guest_refund` gives anywhere inside it (it is evaluated at the
/// start of each step and the rules only change at the cutoffs).
pub fn refund_timeline(policy: Policy, rate: Rate, charge: &Breakdown, t: &StayTimes, now: DateTime<Utc>) -> Vec<Step> {
    let mut starts = vec![now];
    starts.extend(cutoffs(t, now));
    let mut steps: Vec<Step> = Vec::new();
    for (i, from) in starts.iter().enumerate() {
        let refund = guest_refund(policy, rate, charge, t, *from).total();
        let until = starts.get(i + 1).copied();
        match steps.last_mut() {
            Some(last) if last.refund == refund => last.until = until,
            _ => steps.push(Step { from: *from, until, refund }),
        }
    }
    steps
}

/// What a host owes for cancelling a confirmed stay.
pub fn host_penalty(charge: &Breakdown, penalty_bps: i64) -> i64 {
    hometrip_kernel::money::apply_bps(charge.accommodation, penalty_bps)
}

/// An admin's refund of `amount` over what is left of each part of the
/// charge, pro rata (the rounding left over goes to the first parts with
/// room: accommodation, cleaning, service fee, taxes). `None` when `amount`
/// is not positive or more than is left: never more than the guest paid.
pub fn split_refund(amount: i64, charged: &Breakdown, refunded: &Breakdown) -> Option<Breakdown> {
    let left = [
        charged.accommodation - refunded.accommodation,
        charged.cleaning_fee - refunded.cleaning_fee,
        charged.service_fee - refunded.service_fee,
        charged.taxes - refunded.taxes,
    ]
    .map(|x| x.max(0));
    let total: i64 = left.iter().sum();
    if amount <= 0 || amount > total {
        return None;
    }
    let mut parts = left.map(|l| i64::try_from(i128::from(amount) * i128::from(l) / i128::from(total)).unwrap_or(0));
    let mut rest = amount - parts.iter().sum::<i64>();
    for (p, l) in parts.iter_mut().zip(left) {
        let room = (l - *p).min(rest);
        *p += room;
        rest -= room;
    }
    let [accommodation, cleaning_fee, service_fee, taxes] = parts;
    Some(Breakdown { accommodation, cleaning_fee, service_fee, taxes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_refund_is_split_pro_rata_and_never_exceeds_what_is_left() {
        let charged = Breakdown { accommodation: 30_000, cleaning_fee: 3_000, service_fee: 4_290, taxes: 0 };
        let none = Breakdown::default();
        let half = split_refund(18_645, &charged, &none).unwrap();
        assert_eq!(half.total(), 18_645);
        assert_eq!((half.accommodation, half.cleaning_fee, half.service_fee), (15_000, 1_500, 2_145));
        let after = Breakdown { accommodation: 15_000, cleaning_fee: 1_500, service_fee: 2_145, taxes: 0 };
        assert_eq!(split_refund(18_646, &charged, &after), None);
        assert_eq!(split_refund(18_645, &charged, &after).map(|b| b.total()), Some(18_645));
        assert_eq!(split_refund(0, &charged, &none), None);
        // Odd amounts: the rounding lands without passing any part's room.
        let odd = split_refund(7, &charged, &none).unwrap();
        assert_eq!(odd.total(), 7);
    }
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default()
    }

    const CHARGE: Breakdown =
        Breakdown { accommodation: 50_000, cleaning_fee: 6_000, service_fee: 7_840, taxes: 2_500 };

    fn times(nights: u32) -> StayTimes {
        StayTimes {
            booked_at: at("2027-01-01T10:00:00Z"),
            confirmed_at: None,
            check_in_at: at("2027-03-01T15:00:00Z"),
            nights,
        }
    }

    #[test]
    fn the_transition_table_is_the_only_way_between_states() {
        assert_eq!(next(PendingPayment, Action::PaymentCaptured), Some(Confirmed));
        assert_eq!(next(PendingHost, Action::HostDeclines), Some(Declined));
        assert_eq!(next(Confirmed, Action::HostDeclines), None);
        assert_eq!(next(Completed, Action::GuestCancels), None);
        assert_eq!(next(Expired, Action::PaymentCaptured), None);
        // Terminal states have no way out.
        for s in [Declined, Expired, CancelledByGuest, CancelledByHost, Completed] {
            assert!(TRANSITIONS.iter().all(|(f, _, _)| *f != s), "{s:?} is terminal");
        }
        // One target per (state, action).
        for (f, a, _) in TRANSITIONS {
            assert_eq!(TRANSITIONS.iter().filter(|(f2, a2, _)| f2 == f && a2 == a).count(), 1);
        }
    }

    #[test]
    fn local_check_in_follows_the_listing_time_zone() {
        let paris: Tz = "Europe/Paris".parse().unwrap_or(Tz::UTC);
        let d = NaiveDate::from_ymd_opt(2027, 7, 1).unwrap_or_default();
        let t = NaiveTime::from_hms_opt(15, 0, 0).unwrap_or_default();
        assert_eq!(local_instant(paris, d, t), at("2027-07-01T13:00:00Z"));
        // Spring forward: 02:30 does not exist in Paris on 2027-03-28.
        let gap = NaiveDate::from_ymd_opt(2027, 3, 28).unwrap_or_default();
        let t = NaiveTime::from_hms_opt(2, 30, 0).unwrap_or_default();
        assert_eq!(local_instant(paris, gap, t), at("2027-03-28T01:30:00Z"));
    }

    /// Refund totals at each side of each cutoff, for every policy.
    #[test]
    fn each_policy_refunds_by_its_cutoffs() {
        let t = times(5);
        let ci = t.check_in_at;
        let full = CHARGE.total();
        let night = 10_000; // 50,000 over 5 nights
                            // Refund of `acc` accommodation with proportional fee and taxes.
        let part = |acc: i64, cleaning: i64| {
            acc + cleaning + share(CHARGE.service_fee, acc, 50_000) + share(CHARGE.taxes, acc, 50_000)
        };
        let s = Duration::seconds(1);
        // Each cutoff is the first instant of the lesser refund.
        let cases: &[(Policy, DateTime<Utc>, i64)] = &[
            (Policy::Flexible, ci - Duration::hours(24) - s, full),
            (Policy::Flexible, ci - Duration::hours(24), part(4 * night, 6_000)),
            (Policy::Flexible, ci - s, part(4 * night, 6_000)),
            (Policy::Flexible, ci + Duration::hours(1), part(3 * night, 0)),
            (Policy::Moderate, ci - Duration::days(5) - s, full),
            (Policy::Moderate, ci - Duration::days(5), part(2 * night, 6_000)),
            (Policy::Limited, ci - Duration::days(14) - s, full),
            (Policy::Limited, ci - Duration::days(14), part(25_000, 6_000)),
            (Policy::Limited, ci - Duration::days(7) - s, part(25_000, 6_000)),
            (Policy::Limited, ci - Duration::days(7), part(0, 6_000)),
            (Policy::Firm, ci - Duration::days(30) - s, full),
            (Policy::Firm, ci - Duration::days(30), part(25_000, 6_000)),
            (Policy::Firm, ci - Duration::days(7) - s, part(25_000, 6_000)),
            (Policy::Firm, ci - Duration::days(7), part(0, 6_000)),
            // Strict: booked long before, so only 50 % until 7 days out.
            (Policy::Strict, ci - Duration::days(14) - s, part(25_000, 6_000)),
            (Policy::Strict, ci - Duration::days(7) - s, part(25_000, 6_000)),
            (Policy::Strict, ci - Duration::days(7), part(0, 6_000)),
            (Policy::Strict, ci + s, 0),
        ];
        for (policy, now, expected) in cases {
            assert_eq!(
                guest_refund(*policy, Rate::Standard, &CHARGE, &t, *now).total(),
                *expected,
                "{policy:?} at {now}"
            );
        }
        // Strict within 48 hours of booking and 14+ days before: full.
        let fresh = StayTimes { booked_at: ci - Duration::days(20), ..t };
        assert_eq!(
            guest_refund(Policy::Strict, Rate::Standard, &CHARGE, &fresh, ci - Duration::days(19)).total(),
            full
        );
        assert_eq!(
            guest_refund(Policy::Strict, Rate::Standard, &CHARGE, &fresh, ci - Duration::days(18) + s).total(),
            part(25_000, 6_000)
        );
        // Non-refundable: only the cleaning fee before check-in.
        assert_eq!(
            guest_refund(Policy::Flexible, Rate::NonRefundable, &CHARGE, &t, ci - Duration::days(60)).total(),
            6_000
        );
    }

    #[test]
    fn the_grace_period_refunds_in_full_when_confirmed_a_week_ahead() {
        let ci = at("2027-03-01T15:00:00Z");
        let early = StayTimes { confirmed_at: Some(ci - Duration::days(8)), ..times(5) };
        let late = StayTimes { confirmed_at: Some(ci - Duration::days(6)), ..times(5) };
        let within = ci - Duration::days(8) + Duration::hours(23);
        assert_eq!(guest_refund(Policy::Strict, Rate::NonRefundable, &CHARGE, &early, within), CHARGE);
        assert_eq!(grace_period_until(&early), Some(ci - Duration::days(7)));
        assert_eq!(grace_period_until(&late), None);
        assert_ne!(guest_refund(Policy::Strict, Rate::Standard, &CHARGE, &late, ci - Duration::days(6)), CHARGE);
    }

    #[test]
    fn the_timeline_shows_each_step_of_a_moderate_stay() {
        let t = times(3);
        let now = at("2027-02-01T00:00:00Z");
        let steps = refund_timeline(Policy::Moderate, Rate::Standard, &CHARGE, &t, now);
        assert_eq!(steps[0].from, now);
        assert_eq!(steps[0].refund, CHARGE.total());
        assert_eq!(steps[0].until, Some(t.check_in_at - Duration::days(5)));
        assert_eq!(steps.last().map(|s| s.refund), Some(0));
        assert!(steps.windows(2).all(|w| w[0].refund > w[1].refund && w[0].until == Some(w[1].from)));
    }

    proptest! {
        /// Every step of every timeline is what a cancellation inside it gets,
        /// no refund exceeds the charge or any of its parts, and refunds never
        /// grow as check-in nears.
        #[test]
        fn timelines_match_refunds_and_never_exceed_the_charge(
            accommodation in 0i64..5_000_000,
            cleaning in 0i64..100_000,
            service in 0i64..500_000,
            taxes in 0i64..200_000,
            nights in 1u32..60,
            policy in 0usize..5,
            non_refundable in any::<bool>(),
            booked_days_before in 0i64..400,
            now_offset_hours in -9_600i64..2_000,
            probe_fraction in 0.0f64..1.0,
        ) {
            let charge = Breakdown { accommodation, cleaning_fee: cleaning, service_fee: service, taxes };
            let policy = [Policy::Flexible, Policy::Moderate, Policy::Limited, Policy::Firm, Policy::Strict][policy];
            let rate = if non_refundable { Rate::NonRefundable } else { Rate::Standard };
            let ci = at("2027-06-01T15:00:00Z");
            let t = StayTimes { booked_at: ci - Duration::days(booked_days_before), confirmed_at: None, check_in_at: ci, nights };
            let now = ci + Duration::hours(now_offset_hours);
            let steps = refund_timeline(policy, rate, &charge, &t, now);
            let mut last = i64::MAX;
            for step in &steps {
                prop_assert!(step.refund <= last);
                last = step.refund;
                let probe = match step.until {
                    Some(until) => step.from + Duration::seconds(((until - step.from).num_seconds() as f64 * probe_fraction) as i64),
                    None => step.from + Duration::days(3),
                };
                let r = guest_refund(policy, rate, &charge, &t, probe);
                prop_assert_eq!(r.total(), step.refund);
                prop_assert!(r.accommodation <= charge.accommodation && r.cleaning_fee <= charge.cleaning_fee);
                prop_assert!(r.service_fee <= charge.service_fee && r.taxes <= charge.taxes);
                prop_assert!(r.accommodation >= 0 && r.service_fee >= 0 && r.taxes >= 0);
            }
        }
    }
}
