//! The page's language, French or English: `?lang=` (remembered in a
//! cookie), then the `lang` cookie, then the browser's `Accept-Language`.
//! Each language's words are one value of [`Messages`], so a missing
//! translation is a compile error.

use actix_web::http::header::{AcceptLanguage, Header, Preference};
use actix_web::HttpRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    En,
    Fr,
}

impl Locale {
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Fr => "fr",
        }
    }

    fn from_code(code: &str) -> Option<Locale> {
        match code.split(['-', '_']).next()?.to_ascii_lowercase().as_str() {
            "en" => Some(Locale::En),
            "fr" => Some(Locale::Fr),
            _ => None,
        }
    }

    pub fn messages(self) -> &'static Messages {
        match self {
            Locale::En => &EN,
            Locale::Fr => &FR,
        }
    }
}

/// The page's locale, and whether `?lang=` chose it (to be remembered).
pub fn negotiate(req: &HttpRequest) -> (Locale, bool) {
    let asked = web_query_lang(req.query_string());
    if let Some(l) = asked.as_deref().and_then(Locale::from_code) {
        return (l, true);
    }
    if let Some(l) = cookie_value(req, "lang").as_deref().and_then(Locale::from_code) {
        return (l, false);
    }
    let ranked = AcceptLanguage::parse(req).map(|h| h.ranked()).unwrap_or_default();
    let first = ranked.iter().find_map(|p| match p {
        Preference::Specific(tag) => Locale::from_code(tag.primary_language()),
        Preference::Any => None,
    });
    (first.unwrap_or(Locale::En), false)
}

/// The value of the request's cookie `name`.
pub fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|h| h.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

fn web_query_lang(query: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| v)
}

/// The words of the pages in one language.
pub struct Messages {
    pub tagline: &'static str,
    pub skip_to_content: &'static str,
    pub other_language: &'static str,
    pub other_language_name: &'static str,
    pub where_to: &'static str,
    pub where_placeholder: &'static str,
    pub check_in: &'static str,
    pub check_out: &'static str,
    pub guests: &'static str,
    pub search: &'static str,
    pub search_title: &'static str,
    pub featured: &'static str,
    pub results_one: &'static str,
    pub results_many: &'static str,
    pub no_results: &'static str,
    pub per_night: &'static str,
    pub new_listing: &'static str,
    pub next_page: &'static str,
    pub sort_by: &'static str,
    pub sorts: [(&'static str, &'static str); 4],
    pub property_type: &'static str,
    pub any: &'static str,
    pub instant_book: &'static str,
    pub apply: &'static str,
    pub invalid_search: &'static str,
    pub price_per_night: &'static str,
    pub price_min: &'static str,
    pub price_max: &'static str,
    pub whole_amount: &'static str,
    pub suggestions: &'static str,
    pub map: &'static str,
    pub bedrooms: &'static str,
    pub beds: &'static str,
    pub bathrooms: &'static str,
    pub up_to_guests: &'static str,
    pub amenities: &'static str,
    pub price: &'static str,
    pub cleaning_fee: &'static str,
    pub cancellation: &'static str,
    pub check_in_from: &'static str,
    pub check_out_by: &'static str,
    pub reviews: &'static str,
    pub not_found_title: &'static str,
    pub not_found_text: &'static str,
    pub back_home: &'static str,
    pub unavailable_title: &'static str,
    pub unavailable_text: &'static str,
    pub account_menu: &'static str,
    pub sign_in: &'static str,
    pub sign_up: &'static str,
    pub sign_out: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub new_password: &'static str,
    pub display_name: &'static str,
    pub password_hint: &'static str,
    /// The box that revokes the account's API keys with a new password.
    pub revoke_api_keys: &'static str,
    pub totp_code: &'static str,
    pub forgot_link: &'static str,
    pub no_account: &'static str,
    pub have_account: &'static str,
    pub wrong_credentials: &'static str,
    pub totp_needed: &'static str,
    pub totp_wrong: &'static str,
    pub continue_with: &'static str,
    pub provider_expired: &'static str,
    pub provider_cancelled: &'static str,
    pub provider_refused: &'static str,
    pub provider_down: &'static str,
    pub too_many_attempts: &'static str,
    pub account_suspended: &'static str,
    pub email_taken: &'static str,
    pub fix_fields: &'static str,
    pub form_expired_title: &'static str,
    pub form_unreadable_title: &'static str,
    pub form_expired_text: &'static str,
    pub verify_title: &'static str,
    pub verify_text: &'static str,
    pub verify_button: &'static str,
    pub verified_title: &'static str,
    pub verified_text: &'static str,
    pub link_invalid_title: &'static str,
    pub link_invalid_text: &'static str,
    pub forgot_title: &'static str,
    pub forgot_text: &'static str,
    pub send_link: &'static str,
    pub link_sent_title: &'static str,
    pub link_sent_text: &'static str,
    pub reset_title: &'static str,
    pub reset_text: &'static str,
    pub reset_button: &'static str,
    pub password_changed_title: &'static str,
    pub password_changed_text: &'static str,
    /// The booking pages' words.
    pub t: &'static crate::trip_words::TripWords,
    /// The account pages' words.
    pub a: &'static crate::account_words::AccountWords,
    /// The inbox pages' words.
    pub i: &'static crate::inbox_words::InboxWords,
    /// The notifications page's words.
    pub n: &'static crate::inbox_words::NotificationWords,
    /// The host's pages.
    pub h: &'static crate::host_words::HostWords,
    /// The review pages.
    pub r: &'static crate::review_words::ReviewWords,
    /// The admin console.
    pub ad: &'static crate::admin_words::AdminWords,
    /// The notification settings page.
    pub ns: &'static crate::settings_words::NotificationSettingsWords,
    pub k: &'static crate::api_key_words::ApiKeyWords,
}

pub static EN: Messages = Messages {
    tagline: "Homes for your next trip, booked with confidence.",
    skip_to_content: "Skip to content",
    other_language: "fr",
    other_language_name: "Français",
    where_to: "Where to?",
    where_placeholder: "A city, a neighbourhood, a kind of home",
    check_in: "Check-in",
    check_out: "Check-out",
    guests: "Guests",
    search: "Search",
    search_title: "Stays",
    featured: "Homes guests love",
    results_one: "stay",
    results_many: "stays",
    no_results: "No home matches this search. Try other dates or fewer filters.",
    per_night: "night",
    new_listing: "New",
    next_page: "More results",
    sort_by: "Sort by",
    sorts: [
        ("relevance", "Relevance"),
        ("price_asc", "Price, lowest first"),
        ("price_desc", "Price, highest first"),
        ("rating", "Rating"),
    ],
    property_type: "Type of place",
    any: "Any",
    instant_book: "Instant book",
    apply: "Apply",
    invalid_search: "This search cannot be run",
    price_per_night: "Price per night",
    price_min: "From",
    price_max: "Up to",
    whole_amount: "enter a whole amount, like 120",
    suggestions: "Suggestions",
    map: "Where the results are",
    bedrooms: "bedrooms",
    beds: "beds",
    bathrooms: "bathrooms",
    up_to_guests: "guests at most",
    amenities: "Amenities",
    price: "Price",
    cleaning_fee: "Cleaning fee",
    cancellation: "Cancellation policy",
    check_in_from: "Check-in from",
    check_out_by: "Check-out by",
    reviews: "reviews",
    not_found_title: "Page not found",
    not_found_text: "There is nothing at this address.",
    back_home: "Back to the home page",
    unavailable_title: "Something went wrong",
    unavailable_text: "This page cannot be shown right now. Please try again in a moment.",
    account_menu: "Account and language",
    sign_in: "Sign in",
    sign_up: "Sign up",
    sign_out: "Sign out",
    email: "Email",
    password: "Password",
    new_password: "New password",
    display_name: "Your name",
    password_hint: "At least 8 characters, hard to guess.",
    revoke_api_keys: "Also revoke all my API keys (scripts and tools using them stop at once)",
    totp_code: "Code from your authenticator app",
    forgot_link: "Forgot your password?",
    no_account: "New to HomeTrip?",
    have_account: "Already have an account?",
    wrong_credentials: "This email and password do not match.",
    totp_needed: "Enter the code from your authenticator app.",
    totp_wrong: "This code is not valid. Try the current one.",
    continue_with: "Continue with",
    provider_expired: "This sign-in expired or was started in another browser. Start again.",
    provider_cancelled: "The sign-in was cancelled at the provider.",
    provider_refused: "The provider did not let this sign-in through:",
    provider_down: "The provider did not answer. Try again in a moment.",
    too_many_attempts: "Too many attempts. Wait a few minutes and try again.",
    account_suspended: "This account is suspended. Contact support.",
    email_taken: "An account already uses this email. Sign in instead.",
    fix_fields: "Some fields need attention.",
    form_expired_title: "This form has expired",
    form_unreadable_title: "This form could not be read",
    form_expired_text: "Go back, reload the page and try again.",
    verify_title: "Confirm your email",
    verify_text: "One click confirms this address for your HomeTrip account.",
    verify_button: "Confirm my email",
    verified_title: "Your email is confirmed",
    verified_text: "Thank you. You can book and message hosts.",
    link_invalid_title: "This link no longer works",
    link_invalid_text: "It was already used or has expired. Ask for a new one.",
    forgot_title: "Reset your password",
    forgot_text: "We will email you a link to choose a new password.",
    send_link: "Send the link",
    link_sent_title: "Check your inbox",
    link_sent_text: "If an account uses this email, a link to reset its password is on its way.",
    reset_title: "Choose a new password",
    reset_text: "Every other session of your account will end.",
    reset_button: "Save the new password",
    password_changed_title: "Your password is changed",
    password_changed_text: "Sign in with your new password.",
    t: &crate::trip_words::EN,
    a: &crate::account_words::EN,
    i: &crate::inbox_words::EN,
    n: &crate::inbox_words::NOTIFICATIONS_EN,
    h: &crate::host_words::EN,
    r: &crate::review_words::EN,
    ad: &crate::admin_words::EN,
    ns: &crate::settings_words::EN,
    k: &crate::api_key_words::EN,
};

pub static FR: Messages = Messages {
    tagline: "Des logements pour votre prochain voyage, réservés en toute confiance.",
    skip_to_content: "Aller au contenu",
    other_language: "en",
    other_language_name: "English",
    where_to: "Où allez-vous ?",
    where_placeholder: "Une ville, un quartier, un type de logement",
    check_in: "Arrivée",
    check_out: "Départ",
    guests: "Voyageurs",
    search: "Rechercher",
    search_title: "Logements",
    featured: "Les logements préférés des voyageurs",
    results_one: "logement",
    results_many: "logements",
    no_results: "Aucun logement ne correspond. Essayez d’autres dates ou moins de filtres.",
    per_night: "nuit",
    new_listing: "Nouveau",
    next_page: "Plus de résultats",
    sort_by: "Trier par",
    sorts: [
        ("relevance", "Pertinence"),
        ("price_asc", "Prix croissant"),
        ("price_desc", "Prix décroissant"),
        ("rating", "Note"),
    ],
    property_type: "Type de logement",
    any: "Tous",
    instant_book: "Réservation instantanée",
    apply: "Appliquer",
    invalid_search: "Cette recherche ne peut pas être lancée",
    price_per_night: "Prix par nuit",
    price_min: "À partir de",
    price_max: "Jusqu'à",
    whole_amount: "saisissez un montant entier, comme 120",
    suggestions: "Suggestions",
    map: "Où se trouvent les résultats",
    bedrooms: "chambres",
    beds: "lits",
    bathrooms: "salles de bain",
    up_to_guests: "voyageurs au plus",
    amenities: "Équipements",
    price: "Prix",
    cleaning_fee: "Frais de ménage",
    cancellation: "Conditions d’annulation",
    check_in_from: "Arrivée à partir de",
    check_out_by: "Départ avant",
    reviews: "avis",
    not_found_title: "Page introuvable",
    not_found_text: "Il n’y a rien à cette adresse.",
    back_home: "Retour à l’accueil",
    unavailable_title: "Un problème est survenu",
    unavailable_text: "Cette page ne peut pas être affichée pour le moment. Réessayez dans un instant.",
    account_menu: "Compte et langue",
    sign_in: "Se connecter",
    sign_up: "S’inscrire",
    sign_out: "Se déconnecter",
    email: "E-mail",
    password: "Mot de passe",
    new_password: "Nouveau mot de passe",
    display_name: "Votre nom",
    password_hint: "Au moins 8 caractères, difficile à deviner.",
    revoke_api_keys:
        "Révoquer aussi toutes mes clés d’API (les scripts et outils qui s’en servent s’arrêtent aussitôt)",
    totp_code: "Code de votre application d’authentification",
    forgot_link: "Mot de passe oublié ?",
    no_account: "Nouveau sur HomeTrip ?",
    have_account: "Déjà un compte ?",
    wrong_credentials: "Cet e-mail et ce mot de passe ne correspondent pas.",
    totp_needed: "Saisissez le code de votre application d’authentification.",
    totp_wrong: "Ce code n’est pas valide. Essayez le code actuel.",
    continue_with: "Continuer avec",
    provider_expired: "Cette connexion a expiré ou a commencé dans un autre navigateur. Recommencez.",
    provider_cancelled: "La connexion a été annulée chez le fournisseur.",
    provider_refused: "Le fournisseur n’a pas permis cette connexion :",
    provider_down: "Le fournisseur n’a pas répondu. Réessayez dans un instant.",
    too_many_attempts: "Trop de tentatives. Attendez quelques minutes et réessayez.",
    account_suspended: "Ce compte est suspendu. Contactez l’assistance.",
    email_taken: "Un compte utilise déjà cet e-mail. Connectez-vous plutôt.",
    fix_fields: "Certains champs sont à corriger.",
    form_expired_title: "Ce formulaire a expiré",
    form_unreadable_title: "Ce formulaire n’a pas pu être lu",
    form_expired_text: "Revenez en arrière, rechargez la page et réessayez.",
    verify_title: "Confirmez votre e-mail",
    verify_text: "Un clic confirme cette adresse pour votre compte HomeTrip.",
    verify_button: "Confirmer mon e-mail",
    verified_title: "Votre e-mail est confirmé",
    verified_text: "Merci. Vous pouvez réserver et écrire aux hôtes.",
    link_invalid_title: "Ce lien ne fonctionne plus",
    link_invalid_text: "Il a déjà servi ou a expiré. Demandez-en un nouveau.",
    forgot_title: "Réinitialiser votre mot de passe",
    forgot_text: "Nous vous enverrons un lien pour choisir un nouveau mot de passe.",
    send_link: "Envoyer le lien",
    link_sent_title: "Consultez votre boîte de réception",
    link_sent_text: "Si un compte utilise cet e-mail, un lien pour réinitialiser son mot de passe est en route.",
    reset_title: "Choisissez un nouveau mot de passe",
    reset_text: "Toutes les autres sessions de votre compte seront fermées.",
    reset_button: "Enregistrer le nouveau mot de passe",
    password_changed_title: "Votre mot de passe est modifié",
    password_changed_text: "Connectez-vous avec votre nouveau mot de passe.",
    t: &crate::trip_words::FR,
    a: &crate::account_words::FR,
    i: &crate::inbox_words::FR,
    n: &crate::inbox_words::NOTIFICATIONS_FR,
    h: &crate::host_words::FR,
    r: &crate::review_words::FR,
    ad: &crate::admin_words::FR,
    ns: &crate::settings_words::FR,
    k: &crate::api_key_words::FR,
};

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_query_then_the_cookie_then_the_browser_choose() {
        let req =
            TestRequest::default().insert_header(("Accept-Language", "de-DE, fr;q=0.8, en;q=0.5")).to_http_request();
        assert_eq!(negotiate(&req), (Locale::Fr, false));
        let req = TestRequest::default().insert_header(("Accept-Language", "en-GB,fr;q=0.9")).to_http_request();
        assert_eq!(negotiate(&req), (Locale::En, false));
        let req = TestRequest::with_uri("/?lang=fr").insert_header(("Accept-Language", "en")).to_http_request();
        assert_eq!(negotiate(&req), (Locale::Fr, true));
        let req = TestRequest::default()
            .insert_header(("Cookie", "theme=dark; lang=fr"))
            .insert_header(("Accept-Language", "en"))
            .to_http_request();
        assert_eq!(negotiate(&req), (Locale::Fr, false));
        assert_eq!(negotiate(&TestRequest::default().to_http_request()), (Locale::En, false));
    }
}
