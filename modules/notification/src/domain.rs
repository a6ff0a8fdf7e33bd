//! Email templates (French and English) and their rendering. Pure.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    VerifyEmail,
    ResetPassword,
    /// Tells the owner their password changed, in case it was not them.
    PasswordChanged,
    /// Tells the owner two-factor was turned off, in case it was not them.
    TwoFactorDisabled,
    /// Tells the owner an admin is viewing their account as they see it.
    AccountViewed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The link a template points to, with the token in its query string.
pub fn link(public_url: &str, template: Template, token: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let path = match template {
        Template::VerifyEmail => "verify-email",
        Template::ResetPassword => "reset-password",
        Template::PasswordChanged | Template::TwoFactorDisabled => return format!("{base}/forgot-password"),
        Template::AccountViewed => return format!("{base}/account"),
    };
    let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    format!("{base}/{path}?token={token}")
}

pub fn render(template: Template, locale: &str, name: &str, link: &str, valid_for: &str) -> Rendered {
    let fr = locale == "fr";
    let (subject, greeting, body, action, footer) = match (template, fr) {
        (Template::VerifyEmail, false) => (
            "Confirm your email address",
            format!("Hello {name},"),
            "Welcome to HomeTrip! Please confirm your email address to finish setting up your account.".to_owned(),
            "Confirm my email",
            format!("This link is valid for {valid_for}. If you did not create an account, ignore this email."),
        ),
        (Template::VerifyEmail, true) => (
            "Confirmez votre adresse e-mail",
            format!("Bonjour {name},"),
            "Bienvenue sur HomeTrip ! Confirmez votre adresse e-mail pour finaliser votre compte.".to_owned(),
            "Confirmer mon adresse",
            format!("Ce lien est valable {valid_for}. Si vous n'avez pas créé de compte, ignorez ce message."),
        ),
        (Template::ResetPassword, false) => (
            "Reset your HomeTrip password",
            format!("Hello {name},"),
            "We received a request to reset your password. Choose a new one with the link below.".to_owned(),
            "Choose a new password",
            format!("This link is valid for {valid_for} and works once. If you did not ask for it, ignore this email: your password stays the same."),
        ),
        (Template::ResetPassword, true) => (
            "Réinitialisez votre mot de passe HomeTrip",
            format!("Bonjour {name},"),
            "Nous avons reçu une demande de réinitialisation de votre mot de passe. Choisissez-en un nouveau avec le lien ci-dessous.".to_owned(),
            "Choisir un nouveau mot de passe",
            format!("Ce lien est valable {valid_for} et ne sert qu'une fois. Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : votre mot de passe reste inchangé."),
        ),
        (Template::PasswordChanged, false) => (
            "Your HomeTrip password was changed",
            format!("Hello {name},"),
            "The password of your HomeTrip account was just changed, and every device was signed out.".to_owned(),
            "It was not me: secure my account",
            format!("If you made this change, there is nothing to do. Sent {valid_for}."),
        ),
        (Template::PasswordChanged, true) => (
            "Votre mot de passe HomeTrip a été modifié",
            format!("Bonjour {name},"),
            "Le mot de passe de votre compte HomeTrip vient d'être modifié et tous vos appareils ont été déconnectés.".to_owned(),
            "Ce n'était pas moi : sécuriser mon compte",
            format!("Si vous êtes à l'origine de ce changement, vous n'avez rien à faire. Envoyé {valid_for}."),
        ),
        (Template::TwoFactorDisabled, false) => (
            "Two-factor authentication was turned off on your HomeTrip account",
            format!("Hello {name},"),
            "Two-factor authentication was just turned off on your HomeTrip account, and your other devices were signed out.".to_owned(),
            "It was not me: secure my account",
            format!("If you made this change, there is nothing to do. Sent {valid_for}."),
        ),
        (Template::TwoFactorDisabled, true) => (
            "La validation en deux étapes de votre compte HomeTrip a été désactivée",
            format!("Bonjour {name},"),
            "La validation en deux étapes de votre compte HomeTrip vient d'être désactivée et vos autres appareils ont été déconnectés.".to_owned(),
            "Ce n'était pas moi : sécuriser mon compte",
            format!("Si vous êtes à l'origine de ce changement, vous n'avez rien à faire. Envoyé {valid_for}."),
        ),
        // `valid_for` says when, why and until when.
        (Template::AccountViewed, false) => (
            "A HomeTrip administrator is viewing your account",
            format!("Hello {name},"),
            "A member of our support team opened a read-only view of your account, as you see it, to help with a request. They cannot change anything, and the view closes after 30 minutes.".to_owned(),
            "Your account",
            format!("Opened {valid_for}. Questions? Reply to this email."),
        ),
        (Template::AccountViewed, true) => (
            "Un administrateur HomeTrip consulte votre compte",
            format!("Bonjour {name},"),
            "Un membre de notre équipe d'assistance a ouvert une vue en lecture seule de votre compte, telle que vous la voyez, pour traiter une demande. Il ne peut rien modifier, et la vue se ferme au bout de 30 minutes.".to_owned(),
            "Votre compte",
            format!("Ouverte {valid_for}. Une question ? Répondez à cet e-mail."),
        ),
    };
    let text = format!("{greeting}\n\n{body}\n\n{action}: {link}\n\n{footer}\n\n— HomeTrip\n");
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><body><p>{g}</p><p>{b}</p><p><a href=\"{l}\">{a}</a></p><p><small>{f}</small></p><p>— HomeTrip</p></body></html>",
        lang = if fr { "fr" } else { "en" },
        g = html_escape(&greeting),
        b = html_escape(&body),
        l = html_escape(link),
        a = html_escape(action),
        f = html_escape(&footer),
    );
    Rendered { subject: subject.to_owned(), text, html }
}

/// A duration for humans, in the email's language.
pub fn human_duration(minutes: i64, locale: &str) -> String {
    if minutes >= 120 && minutes % 60 == 0 {
        let h = minutes / 60;
        if locale == "fr" {
            format!("{h} heures")
        } else {
            format!("{h} hours")
        }
    } else {
        // "minutes" is the same word in both languages.
        format!("{minutes} minutes")
    }
}

/// The email of a catalogue notification: its title as the subject, its
/// body, and a link into the web app.
pub fn render_notice(title: &str, body: &str, url: &str, locale: &str) -> Rendered {
    let (lang, action) = if locale == "fr" { ("fr", "Ouvrir HomeTrip") } else { ("en", "Open HomeTrip") };
    let text = format!("{body}\n\n{action}: {url}\n\n— HomeTrip\n");
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><body><p>{b}</p><p><a href=\"{l}\">{a}</a></p><p>— HomeTrip</p></body></html>",
        b = html_escape(body),
        l = html_escape(url),
        a = html_escape(action),
    );
    Rendered { subject: title.to_owned(), text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_token_in_the_query() {
        assert_eq!(
            link("https://h.example/", Template::VerifyEmail, "a+b/c"),
            "https://h.example/verify-email?token=a%2Bb%2Fc"
        );
        assert_eq!(link("http://x", Template::ResetPassword, "t"), "http://x/reset-password?token=t");
    }

    #[test]
    fn templates_exist_in_both_languages() {
        let en = render(Template::VerifyEmail, "en", "Ann", "http://l?token=t", "48 hours");
        let fr = render(Template::VerifyEmail, "fr", "Ann", "http://l?token=t", "48 heures");
        assert!(en.subject.contains("Confirm"));
        assert!(fr.subject.contains("Confirmez"));
        assert!(en.text.contains("http://l?token=t") && fr.text.contains("http://l?token=t"));
        let en = render(Template::ResetPassword, "en", "Ann", "L", "1 hour");
        let fr = render(Template::ResetPassword, "fr", "Ann", "L", "1 heure");
        assert!(en.subject.contains("Reset") && fr.subject.contains("Réinitialisez"));
        // Unknown locales fall back to English.
        assert_eq!(
            render(Template::ResetPassword, "de", "Ann", "L", "x").subject,
            render(Template::ResetPassword, "en", "Ann", "L", "x").subject
        );
    }

    #[test]
    fn password_change_notice_points_to_recovery() {
        assert_eq!(link("http://x/", Template::PasswordChanged, ""), "http://x/forgot-password");
        let en = render(Template::PasswordChanged, "en", "Ann", "http://x/forgot-password", "now");
        let fr = render(Template::PasswordChanged, "fr", "Ann", "http://x/forgot-password", "maintenant");
        assert!(en.subject.contains("changed") && fr.subject.contains("modifié"));
        assert!(en.text.contains("http://x/forgot-password"));
        let en = render(Template::TwoFactorDisabled, "en", "Ann", "http://x/forgot-password", "now");
        let fr = render(Template::TwoFactorDisabled, "fr", "Ann", "http://x/forgot-password", "maintenant");
        assert!(en.subject.contains("Two-factor") && fr.subject.contains("deux étapes"));
        assert_eq!(link("http://x", Template::TwoFactorDisabled, ""), "http://x/forgot-password");
    }

    #[test]
    fn names_are_escaped_in_html() {
        let r = render(Template::VerifyEmail, "en", "<script>alert(1)</script>", "http://l?a=1&token=t", "1 hour");
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("&lt;script&gt;"));
        assert!(r.html.contains("a=1&amp;token=t"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(2880, "en"), "48 hours");
        assert_eq!(human_duration(2880, "fr"), "48 heures");
        assert_eq!(human_duration(60, "en"), "60 minutes");
    }
}
