//! Contact details in free text. Until a booking between guest and host is
//! confirmed, the message module hides email addresses, phone numbers and
//! links (they become `[hidden]`); the review module holds reviews that
//! carry them. Found written plainly or in the usual disguises: "jean at gmail dot com",
//! "arobase … point fr", spaced, dashed or spelled-out digits (French pairs
//! included: "zéro six douze trente-quatre"). Ordinary numbers (prices,
//! dates, times, house numbers, "2 adults", door codes) stay.
//!
//! Detectors, each giving byte ranges, merged before replacing:
//! - links and emails: `linkify` (a scheme is not required: `site.fr/x`);
//! - disguised emails: a local part, an "at" word or sign, a domain whose
//!   last label is a common top-level domain, with "dot"/"point" words;
//! - phone numbers: libphonenumber's matcher (valid numbers of the regions
//!   our guests and hosts write from, and any number in international form);
//! - digit runs: consecutive numeric tokens (digits, digit words in English
//!   and French) separated only by spaces and `, . / - ( ) +`, holding 9 to
//!   15 digits in all: a phone number however it is spelled. Dates (8
//!   digits), times (`:`), prices and counts stay under 9 or are broken by
//!   words and symbols.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;
use rlibphonenumber::phonenumber_matcher::FindNumberExt as _;
use rlibphonenumber::Region;

/// What a masked contact detail is replaced with.
pub const HIDDEN: &str = "[hidden]";

/// A message body after masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    pub text: String,
    /// Whether anything was hidden.
    pub masked: bool,
}

/// Hides every contact detail of `text`.
pub fn mask_contacts(text: &str) -> Masked {
    let spans = contact_spans(text);
    if spans.is_empty() {
        return Masked { text: text.to_owned(), masked: false };
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(HIDDEN);
        at = span.end;
    }
    out.push_str(&text[at..]);
    Masked { text: out, masked: true }
}

/// The byte ranges of `text` holding contact details, sorted and merged.
pub fn contact_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    links_and_emails(text, &mut spans);
    disguised_emails(text, &mut spans);
    phone_numbers(text, &mut spans);
    digit_runs(text, &mut spans);
    merge(spans)
}

fn merge(mut spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    spans.sort_by_key(|s| (s.start, s.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

fn links_and_emails(text: &str, spans: &mut Vec<Range<usize>>) {
    let mut finder = linkify::LinkFinder::new();
    finder.url_must_have_scheme(false);
    spans.extend(finder.links(text).map(|link| link.start()..link.end()));
}

/// "jean at gmail dot com", "paul (arobase) hotmail (point) fr",
/// "anna[at]proton[dot]me", "kate @ gmail . com".
static DISGUISED_EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    let dot = r"(?:\s*(?:\.|\(\s*(?:dot|point)\s*\)|\[\s*(?:dot|point|\.)\s*\]|\{\s*(?:dot|point)\s*\})\s*|\s+(?:dot|point)\s+)";
    let at = r"(?:\s*(?:@|\(\s*(?:at|arobase)\s*\)|\[\s*(?:at|arobase)\s*\]|\{\s*(?:at|arobase)\s*\})\s*|\s+(?:at|arobase)\s+)";
    let word = r"[\p{L}\p{N}_%+-]+";
    let tld = r"(?:com|fr|net|org|de|uk|co|io|eu|be|ch|es|it|nl|me|info|biz|ca|us|pt|at|lu)";
    let pattern = format!(r"(?i)\b{word}(?:{dot}{word})*{at}{word}(?:{dot}{word})*{dot}{tld}\b");
    // A constant pattern: it compiles (the tests run it).
    #[allow(clippy::expect_used)]
    Regex::new(&pattern).expect("the disguised-email pattern compiles")
});

fn disguised_emails(text: &str, spans: &mut Vec<Range<usize>>) {
    spans.extend(DISGUISED_EMAIL.find_iter(text).map(|m| m.range()));
}

/// Where guests and hosts write from; numbers in international form are
/// found whatever their country.
const REGIONS: [Region; 11] = [
    Region::FR,
    Region::GB,
    Region::US,
    Region::DE,
    Region::ES,
    Region::IT,
    Region::BE,
    Region::CH,
    Region::NL,
    Region::PT,
    Region::CA,
];

fn phone_numbers(text: &str, spans: &mut Vec<Range<usize>>) {
    for found in text.find_phone_numbers_with_regions(REGIONS) {
        spans.push(found.start..found.end());
    }
}

/// Words, numbers and hyphenated compounds ("soixante-dix-huit", "0-7-7").
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)*").expect("the token pattern compiles")
});

/// A numeric token: how many digits it stands for, and whether it is
/// spelled out.
#[derive(Clone, Copy)]
struct Numeric {
    digits: usize,
    spelled: bool,
}

/// What may stand between the numeric tokens of one phone number. A comma
/// joins only numbers read out one or two digits at a time, in words
/// ("zéro six, douze"): between numerals it separates a list ("the 12, 13,
/// 14, 15, 16 June", "15/06/2024, 450 €").
fn joins_digits(gap: &str, before: Numeric, after: Numeric) -> bool {
    let comma = gap.contains(',');
    let spoken = (before.spelled && after.spelled)
        || (before.digits <= 2 && after.digits <= 2 && (before.spelled || after.spelled));
    gap.chars().all(|c| c.is_whitespace() || matches!(c, ',' | '.' | '/' | '-' | '(' | ')' | '+')) && (!comma || spoken)
}

const MIN_DIGITS: usize = 9;
const MAX_DIGITS: usize = 15;

fn digit_runs(text: &str, spans: &mut Vec<Range<usize>>) {
    let mut run: Option<(Range<usize>, usize)> = None;
    // The run's last token.
    let mut last = Numeric { digits: 0, spelled: false };
    let mut close = |run: &mut Option<(Range<usize>, usize)>| {
        if let Some((span, digits)) = run.take() {
            if (MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
                spans.push(span);
            }
        }
    };
    for token in TOKEN.find_iter(text) {
        let Some(numeric) = numeric_token(token.as_str()) else {
            close(&mut run);
            continue;
        };
        match &mut run {
            Some((span, count)) if joins_digits(&text[span.end..token.start()], last, numeric) => {
                span.end = token.end();
                *count += numeric.digits;
            }
            _ => {
                close(&mut run);
                run = Some((token.range(), numeric.digits));
            }
        }
        last = numeric;
    }
    close(&mut run);
}

/// The token as a number, when it is one: digits (or digit groups joined
/// by dashes), digit words in a row ("six-one-two"), "double"/"triple" (the
/// next digit again), or a number word up to 99 as phone numbers are read
/// out (two digits from ten on).
fn numeric_token(token: &str) -> Option<Numeric> {
    if token.split('-').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())) {
        return Some(Numeric { digits: token.bytes().filter(u8::is_ascii_digit).count(), spelled: false });
    }
    let lower = token.to_lowercase();
    let spelled = |digits| Some(Numeric { digits, spelled: true });
    match lower.as_str() {
        "double" => return spelled(1),
        "triple" => return spelled(2),
        _ => {}
    }
    let parts: Vec<&str> = lower.split('-').collect();
    if parts.len() > 1 && parts.iter().all(|p| simple_number(p).is_some_and(|v| v < 10)) {
        return spelled(parts.len());
    }
    let value = number_word(&lower)?;
    spelled(if value >= 10 { 2 } else { 1 })
}

/// The value of an English or French number word up to 99, hyphenated
/// compounds included ("twenty-three", "quatre-vingt-dix-sept").
fn number_word(word: &str) -> Option<u32> {
    let parts: Vec<&str> = word.split('-').filter(|p| *p != "et" && *p != "and").collect();
    let mut total = 0;
    let mut i = 0;
    while i < parts.len() {
        // "quatre-vingt(s)": four twenties.
        if parts[i] == "quatre" && matches!(parts.get(i + 1), Some(&("vingt" | "vingts"))) {
            total += 80;
            i += 2;
            continue;
        }
        total += simple_number(parts[i])?;
        i += 1;
    }
    (total < 100 && !parts.is_empty()).then_some(total)
}

fn simple_number(word: &str) -> Option<u32> {
    Some(match word {
        "zero" | "zéro" | "oh" | "o" => 0,
        "one" | "un" => 1,
        "two" | "deux" => 2,
        "three" | "trois" => 3,
        "four" | "quatre" => 4,
        "five" | "cinq" => 5,
        "six" => 6,
        "seven" | "sept" => 7,
        "eight" | "huit" => 8,
        "nine" | "neuf" => 9,
        "ten" | "dix" => 10,
        "eleven" | "onze" => 11,
        "twelve" | "douze" => 12,
        "thirteen" | "treize" => 13,
        "fourteen" | "quatorze" => 14,
        "fifteen" | "quinze" => 15,
        "sixteen" | "seize" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        "twenty" | "vingt" => 20,
        "thirty" | "trente" => 30,
        "forty" | "quarante" => 40,
        "fifty" | "cinquante" => 50,
        "sixty" | "soixante" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_contact_is_hidden_and_ordinary_numbers_stay() {
        let cases = [
            ("call 06 12 34 56 78 tonight", "call [hidden] tonight"),
            ("mail: jean at gmail dot com!", "mail: [hidden]!"),
            ("see www.gite-du-lac.fr now", "see [hidden] now"),
            ("zéro six douze trente-quatre cinquante-six soixante-dix-huit", "[hidden]"),
            ("We are 2 adults, check-in at 15:00 on 15/06/2024, 450 € in all.", ""),
            ("The door code is 4521, flat 12, 3rd floor.", ""),
        ];
        for (text, want) in cases {
            let masked = mask_contacts(text);
            let want = if want.is_empty() { text } else { want };
            assert_eq!(masked.text, want, "{text}");
            assert_eq!(masked.masked, want != text, "{text}");
        }
    }

    #[test]
    fn number_words_read_as_phone_numbers_are_read() {
        assert_eq!(number_word("soixante-dix-huit"), Some(78));
        assert_eq!(number_word("quatre-vingt-neuf"), Some(89));
        assert_eq!(number_word("quatre-vingt-dix-sept"), Some(97));
        assert_eq!(number_word("twenty-three"), Some(23));
        assert_eq!(number_word("vingt-et-un"), Some(21));
        assert_eq!(number_word("maison"), None);
        assert_eq!(numeric_token("0-7-7-0-0").map(|n| n.digits), Some(5));
        assert_eq!(numeric_token("six-one-two").map(|n| n.digits), Some(3));
        assert_eq!(numeric_token("dix-sept").map(|n| n.digits), Some(2));
        assert!(numeric_token("07h45").is_none());
    }
}
