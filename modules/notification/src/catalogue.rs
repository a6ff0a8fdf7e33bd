//! The catalogue of notification kinds: who may turn which channel off, the
//! defaults, and each kind's text in French and English (title, body, link)
//! for the in-app list, push, SMS and email alike. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::api::{KINDS, SECURITY_KINDS};

pub fn is_kind(kind: &str) -> bool {
    KINDS.contains(&kind)
}

pub fn is_security(kind: &str) -> bool {
    SECURITY_KINDS.contains(&kind)
}

pub use crate::api::Channels;

/// What a user gets unless they chose otherwise: everything but SMS, which
/// costs money and needs a verified number.
pub fn default_channels(kind: &str) -> Channels {
    if is_security(kind) {
        return Channels { email: true, sms: false, push: false, in_app: false };
    }
    Channels { email: true, sms: false, push: true, in_app: true }
}

pub fn default_preferences() -> BTreeMap<String, Channels> {
    KINDS.iter().map(|k| ((*k).to_owned(), default_channels(k))).collect()
}

/// The facts a text is made from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Vars {
    /// The other person (guest, host or sender).
    pub who: String,
    pub listing: String,
    /// Check-in and check-out, as dates.
    pub dates: String,
    pub count: i64,
    pub amount: String,
    /// The web app's path it leads to.
    pub link: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Text {
    pub title: String,
    pub body: String,
    pub link: String,
}

/// The text of `kind` in `locale` (French for `fr`, English otherwise).
pub fn render(kind: &str, locale: &str, v: &Vars) -> Text {
    let fr = locale == "fr";
    let (title, body) = match (kind, fr) {
        ("booking_requested", false) => (
            format!("New request from {}", v.who),
            format!("{} would like to stay at {} ({}). Answer within 24 hours.", v.who, v.listing, v.dates),
        ),
        ("booking_requested", true) => (
            format!("Nouvelle demande de {}", v.who),
            format!("{} souhaite séjourner à {} ({}). Répondez sous 24 heures.", v.who, v.listing, v.dates),
        ),
        ("booking_confirmed", false) => {
            ("Booking confirmed".to_owned(), format!("Your stay at {} ({}) is confirmed.", v.listing, v.dates))
        }
        ("booking_confirmed", true) => {
            ("Réservation confirmée".to_owned(), format!("Le séjour à {} ({}) est confirmé.", v.listing, v.dates))
        }
        ("booking_declined", false) => (
            "Request declined".to_owned(),
            format!("Your request for {} ({}) was declined; you were not charged.", v.listing, v.dates),
        ),
        ("booking_declined", true) => (
            "Demande refusée".to_owned(),
            format!("Votre demande pour {} ({}) a été refusée ; vous n'avez pas été débité.", v.listing, v.dates),
        ),
        ("booking_cancelled", false) => {
            ("Booking cancelled".to_owned(), format!("The stay at {} ({}) was cancelled.", v.listing, v.dates))
        }
        ("booking_cancelled", true) => {
            ("Réservation annulée".to_owned(), format!("Le séjour à {} ({}) a été annulé.", v.listing, v.dates))
        }
        ("booking_reminder", false) => {
            ("Your stay starts tomorrow".to_owned(), format!("See you tomorrow at {} ({}).", v.listing, v.dates))
        }
        ("booking_reminder", true) => {
            ("Votre séjour commence demain".to_owned(), format!("À demain à {} ({}).", v.listing, v.dates))
        }
        ("message_received", false) if v.count > 1 => {
            (format!("{} new messages from {}", v.count, v.who), format!("About {}.", v.listing))
        }
        ("message_received", false) => (format!("New message from {}", v.who), format!("About {}.", v.listing)),
        ("message_received", true) if v.count > 1 => {
            (format!("{} nouveaux messages de {}", v.count, v.who), format!("À propos de {}.", v.listing))
        }
        ("message_received", true) => (format!("Nouveau message de {}", v.who), format!("À propos de {}.", v.listing)),
        // `dates` holds the last day reviews are accepted.
        ("review_requested", false) => {
            ("How was your stay?".to_owned(), format!("Leave a review of {} by {}.", v.listing, v.dates))
        }
        ("review_requested", true) => (
            "Comment s'est passé le séjour ?".to_owned(),
            format!("Laissez un avis sur {} avant le {}.", v.listing, v.dates),
        ),
        ("review_published", false) => ("New review".to_owned(), format!("A review of {} was published.", v.listing)),
        ("review_published", true) => ("Nouvel avis".to_owned(), format!("Un avis sur {} a été publié.", v.listing)),
        ("payout_paid", false) => ("Payout sent".to_owned(), format!("We sent you {}.", v.amount)),
        ("payout_paid", true) => ("Virement envoyé".to_owned(), format!("Nous vous avons versé {}.", v.amount)),
        (_, false) => ("HomeTrip".to_owned(), "You have a new notification.".to_owned()),
        (_, true) => ("HomeTrip".to_owned(), "Vous avez une nouvelle notification.".to_owned()),
    };
    Text { title, body, link: v.link.clone() }
}

/// The text of an SMS: title and body on one line, with the link.
pub fn sms_text(text: &Text, public_url: &str) -> String {
    format!("HomeTrip: {} — {} {}{}", text.title, text.body, public_url.trim_end_matches('/'), text.link)
}

/// Whether `at` (minutes since local midnight) falls in the quiet hours
/// `from`..`to` (which may span midnight).
pub fn in_quiet_hours(at: u32, from: u32, to: u32) -> bool {
    match from.cmp(&to) {
        std::cmp::Ordering::Less => at >= from && at < to,
        std::cmp::Ordering::Greater => at >= from || at < to,
        std::cmp::Ordering::Equal => false,
    }
}

/// `HH:MM` → minutes since midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_text_in_both_languages() {
        let v = Vars { who: "Jean".into(), listing: "Maison".into(), count: 1, ..Vars::default() };
        for kind in KINDS.iter().filter(|k| !is_security(k)) {
            let (en, fr) = (render(kind, "en", &v), render(kind, "fr", &v));
            assert_ne!(en.title, "HomeTrip", "{kind}");
            assert_ne!(en.title, fr.title, "{kind}");
        }
        let digest = Vars { count: 3, ..v };
        assert_eq!(render("message_received", "en", &digest).title, "3 new messages from Jean");
    }

    #[test]
    fn quiet_hours_may_span_midnight() {
        let (from, to) = (parse_hhmm("22:00").unwrap(), parse_hhmm("08:00").unwrap());
        assert!(in_quiet_hours(23 * 60, from, to));
        assert!(in_quiet_hours(7 * 60 + 59, from, to));
        assert!(!in_quiet_hours(8 * 60, from, to));
        assert!(!in_quiet_hours(12 * 60, from, to));
        assert!(in_quiet_hours(13 * 60, 12 * 60, 14 * 60));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("7:00"), None);
    }
}
