//! The message module's pure rules: what an attachment is by its bytes,
//! quick-reply placeholders, and scheduled sends in the listing's time zone.
//! Contact masking is the kernel's (`hometrip_kernel::contacts`), shared with
//! the review module's spam check.

pub use hometrip_kernel::contacts::{contact_spans, mask_contacts, Masked, HIDDEN};

/// What an attachment is, by its bytes (never by its name or declared type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    /// JPEG, PNG or WebP: re-encoded before it is stored.
    Image,
    Pdf,
}

/// The kind of an upload, from its content; `None` for anything else.
pub fn attachment_kind(bytes: &[u8]) -> Option<AttachmentKind> {
    let image = bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || (bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP");
    if image {
        return Some(AttachmentKind::Image);
    }
    // A PDF starts with its header and ends with an end-of-file marker
    // (trailing whitespace or a short garbage tail is common and allowed).
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    if bytes.starts_with(b"%PDF-") && tail.windows(5).any(|w| w == b"%%EOF") {
        return Some(AttachmentKind::Pdf);
    }
    None
}

/// The placeholders a quick reply or a scheduled message may hold.
pub const PLACEHOLDERS: &[&str] = &["guest_name", "listing_title", "check_in", "check_out", "listing_address"];

/// The values of the placeholders for one conversation. The address is
/// there only for a guest with a confirmed booking.
#[derive(Debug, Clone, Default)]
pub struct Filling {
    pub guest_name: String,
    pub listing_title: String,
    pub check_in: Option<String>,
    pub check_out: Option<String>,
    pub listing_address: Option<String>,
}

/// The `{name}` placeholders of `template` that are not ours.
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    placeholder_names(template).into_iter().filter(|n| !PLACEHOLDERS.contains(&n.as_str())).collect()
}

fn placeholder_names(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) if after[..end].chars().all(|c| c.is_ascii_lowercase() || c == '_') && end > 0 => {
                names.push(after[..end].to_owned());
                rest = &after[end + 1..];
            }
            _ => rest = after,
        }
    }
    names
}

/// Fills the placeholders; what is not known (yet) says so.
pub fn fill(template: &str, f: &Filling) -> String {
    let not_yet = "[shared once the booking is confirmed]";
    let mut out = template.to_owned();
    for (name, value) in [
        ("guest_name", f.guest_name.as_str()),
        ("listing_title", f.listing_title.as_str()),
        ("check_in", f.check_in.as_deref().unwrap_or("—")),
        ("check_out", f.check_out.as_deref().unwrap_or("—")),
        ("listing_address", f.listing_address.as_deref().unwrap_or(not_yet)),
    ] {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// When a message set for `days_before` check-in at local time `at` goes,
/// in the listing's time zone: a local time skipped by a daylight-saving
/// change goes at the first valid instant after it, an ambiguous one at its
/// first occurrence.
pub fn local_send_at(
    check_in: chrono::NaiveDate,
    days_before: u32,
    at: chrono::NaiveTime,
    tz: chrono_tz::Tz,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::TimeZone as _;
    let local = (check_in - chrono::Duration::days(i64::from(days_before))).and_time(at);
    (0..=120)
        .step_by(15)
        .find_map(|minutes| tz.from_local_datetime(&(local + chrono::Duration::minutes(minutes))).earliest())
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;

    #[test]
    fn scheduled_times_follow_the_listings_clock_across_daylight_saving() {
        let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let ten = chrono::NaiveTime::from_hms_opt(10, 0, 0).unwrap();
        let date = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        // The day before the spring change, then on it: 10:00 local both times.
        assert_eq!(local_send_at(date("2027-03-28"), 1, ten, paris).unwrap().to_rfc3339(), "2027-03-27T09:00:00+00:00");
        assert_eq!(local_send_at(date("2027-03-29"), 1, ten, paris).unwrap().to_rfc3339(), "2027-03-28T08:00:00+00:00");
        // 02:30 does not exist that night: the first valid time after it.
        let half_two = chrono::NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            local_send_at(date("2027-03-28"), 0, half_two, paris).unwrap().to_rfc3339(),
            "2027-03-28T01:00:00+00:00"
        );
        // 02:30 happens twice in autumn: the first.
        assert_eq!(
            local_send_at(date("2027-10-31"), 0, half_two, paris).unwrap().to_rfc3339(),
            "2027-10-31T00:30:00+00:00"
        );
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_found() {
        let f = Filling {
            guest_name: "Jean".into(),
            listing_title: "Maison".into(),
            check_in: Some("2027-03-12".into()),
            ..Filling::default()
        };
        assert_eq!(
            fill("Hi {guest_name}, see you on {check_in} at {listing_address}", &f),
            "Hi Jean, see you on 2027-03-12 at [shared once the booking is confirmed]"
        );
        assert_eq!(unknown_placeholders("{guest_name} {wifi_code} {x} {} {Not}"), vec!["wifi_code", "x"]);
    }

    #[test]
    fn attachments_are_known_by_their_bytes() {
        assert_eq!(attachment_kind(b"%PDF-1.7\n...\n%%EOF\n"), Some(AttachmentKind::Pdf));
        assert_eq!(attachment_kind(b"%PDF-1.7\n but cut off"), None);
        assert_eq!(attachment_kind(b"\x89PNG\r\n\x1a\n...."), Some(AttachmentKind::Image));
        assert_eq!(attachment_kind(b"RIFF\0\0\0\0WEBPVP8 "), Some(AttachmentKind::Image));
        assert_eq!(attachment_kind(b"GIF89a......"), None);
        assert_eq!(attachment_kind(b"hello, this is text named invoice.pdf"), None);
    }

    /// Precision and recall over the labelled messages
    /// (`tests/data/masking-labelled.tsv`, English and French): a contact is
    /// caught when hidden spans cover 90 % of it; a hidden span that touches
    /// no contact is a false positive. Print them with
    /// `cargo test -p hometrip-message labelled -- --nocapture`.
    #[test]
    fn the_labelled_messages_are_masked_with_high_precision_and_recall() {
        let data = include_str!("../tests/data/masking-labelled.tsv");
        let (mut spans, mut wrong, mut contacts, mut caught, mut messages) = (0, 0, 0, 0, 0);
        let mut report = Vec::new();
        for line in data.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let mut fields = line.split('\t');
            let (_lang, text) = (fields.next().unwrap(), fields.next().unwrap());
            let labelled: Vec<Range<usize>> = fields
                .next()
                .unwrap_or("")
                .split(" | ")
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let start = text.find(c).unwrap_or_else(|| panic!("{c:?} is not in {text:?}"));
                    start..start + c.len()
                })
                .collect();
            messages += 1;
            let found = contact_spans(text);
            for span in &found {
                spans += 1;
                if !labelled.iter().any(|c| c.start < span.end && span.start < c.end) {
                    wrong += 1;
                    report.push(format!("false positive {:?} in {text:?}", &text[span.clone()]));
                }
            }
            for contact in &labelled {
                contacts += 1;
                let covered: usize =
                    found.iter().map(|s| s.end.min(contact.end).saturating_sub(s.start.max(contact.start))).sum();
                if covered * 10 >= contact.len() * 9 {
                    caught += 1;
                } else {
                    report.push(format!("missed {:?} in {text:?}", &text[contact.clone()]));
                }
            }
        }
        let precision = (spans - wrong) as f64 / spans.max(1) as f64;
        let recall = caught as f64 / contacts.max(1) as f64;
        println!(
            "{messages} messages, {contacts} contacts: precision {precision:.3} ({wrong} of {spans} hidden spans wrong), recall {recall:.3} ({caught} caught)"
        );
        for line in &report {
            println!("  {line}");
        }
        assert!(messages >= 200);
        assert!(precision >= 0.97 && recall >= 0.95, "precision {precision:.3}, recall {recall:.3}: {report:#?}");
    }
}
