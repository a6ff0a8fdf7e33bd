//! The words of the API keys page in each language; [`crate::locale::Messages`]
//! holds them as `k`.

use hometrip_auth::api::Scope;

pub struct ApiKeyWords {
    pub title: &'static str,
    pub intro: &'static str,
    pub your_keys: &'static str,
    pub none: &'static str,
    pub new_key_title: &'static str,
    pub name: &'static str,
    pub scopes: &'static str,
    pub expires_on: &'static str,
    pub expires_hint: &'static str,
    pub create: &'static str,
    pub shown_once: &'static str,
    pub created: &'static str,
    pub last_used: &'static str,
    pub never: &'static str,
    pub ends: &'static str,
    pub no_end: &'static str,
    pub replaced: &'static str,
    pub rotate: &'static str,
    pub rotate_hint: &'static str,
    pub revoke: &'static str,
    pub revoked: &'static str,
    pub rotated: &'static str,
    pub bad_date: &'static str,
    /// What each scope grants, in [`Scope::ALL`]'s order.
    pub scope_labels: [&'static str; 8],
}

impl ApiKeyWords {
    pub fn scope(&self, scope: Scope) -> &'static str {
        let i = Scope::ALL.iter().position(|s| *s == scope).unwrap_or(0);
        self.scope_labels[i]
    }
}

pub static EN: ApiKeyWords = ApiKeyWords {
    title: "API keys",
    intro: "A key lets a channel manager, a property-management tool or your own scripts use HomeTrip's API as you, \
            only for what you tick below. Keep keys secret; revoke one the moment you stop trusting it.",
    your_keys: "Your keys",
    none: "No keys yet.",
    new_key_title: "New key",
    name: "Name",
    scopes: "What the key may do",
    expires_on: "Stops after (optional)",
    expires_hint: "Leave empty for a key that runs until you revoke it.",
    create: "Create the key",
    shown_once: "Your new key. Copy it now: it is shown this once and HomeTrip keeps only a fingerprint of it.",
    created: "Created",
    last_used: "Last used",
    never: "never",
    ends: "Stops",
    no_end: "until revoked",
    replaced: "Replaced by a newer key",
    rotate: "Rotate",
    rotate_hint: "Rotating gives a new key; the old one keeps working for an hour so you can swap it.",
    revoke: "Revoke",
    revoked: "The key was revoked: it stopped working at once.",
    rotated: "The key was rotated.",
    bad_date: "Give the date as YYYY-MM-DD, in the future.",
    scope_labels: [
        "Read listings, quotes and search",
        "Create, edit, publish and unlist listings",
        "Read calendars and their feeds",
        "Block, free and price nights; calendar imports",
        "Read bookings",
        "Accept, decline and cancel bookings",
        "Read conversations and messages",
        "Send messages and quick replies",
    ],
};

pub static FR: ApiKeyWords = ApiKeyWords {
    title: "Clés d'API",
    intro: "Une clé permet à un gestionnaire de canaux, à un logiciel de gestion locative ou à vos propres scripts \
            d'utiliser l'API de HomeTrip en votre nom, seulement pour ce que vous cochez ci-dessous. Gardez vos clés \
            secrètes ; révoquez-en une dès que vous ne lui faites plus confiance.",
    your_keys: "Vos clés",
    none: "Aucune clé pour l'instant.",
    new_key_title: "Nouvelle clé",
    name: "Nom",
    scopes: "Ce que la clé peut faire",
    expires_on: "S'arrête après le (facultatif)",
    expires_hint: "Laissez vide pour une clé valable jusqu'à sa révocation.",
    create: "Créer la clé",
    shown_once: "Votre nouvelle clé. Copiez-la maintenant : elle n'est affichée qu'une fois et HomeTrip n'en garde \
                 qu'une empreinte.",
    created: "Créée le",
    last_used: "Dernière utilisation",
    never: "jamais",
    ends: "S'arrête",
    no_end: "à sa révocation",
    replaced: "Remplacée par une clé plus récente",
    rotate: "Renouveler",
    rotate_hint:
        "Renouveler donne une nouvelle clé ; l'ancienne fonctionne encore une heure, le temps de la remplacer.",
    revoke: "Révoquer",
    revoked: "La clé a été révoquée : elle a cessé de fonctionner immédiatement.",
    rotated: "La clé a été renouvelée.",
    bad_date: "Indiquez la date au format AAAA-MM-JJ, dans le futur.",
    scope_labels: [
        "Lire les annonces, les devis et la recherche",
        "Créer, modifier, publier et retirer des annonces",
        "Lire les calendriers et leurs flux",
        "Bloquer, libérer et tarifer des nuits ; imports de calendrier",
        "Lire les réservations",
        "Accepter, refuser et annuler des réservations",
        "Lire les conversations et les messages",
        "Envoyer des messages et des réponses rapides",
    ],
};
