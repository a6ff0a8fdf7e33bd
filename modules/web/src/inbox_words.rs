//! The words of the inbox pages in each language; [`crate::locale::Messages`]
//! holds them as `i`.

pub struct InboxWords {
    pub inbox: &'static str,
    pub no_conversations: &'static str,
    pub unread: &'static str,
    pub you: &'static str,
    pub about: &'static str,
    pub no_messages: &'static str,
    pub message_label: &'static str,
    pub send: &'static str,
    pub seen: &'static str,
    pub masked: &'static str,
    pub attachment: &'static str,
    pub contact_host: &'static str,
    pub contact_hint: &'static str,
    pub someone: &'static str,
}

pub static EN: InboxWords = InboxWords {
    inbox: "Messages",
    no_conversations: "No messages yet. Ask a host a question from their listing's page.",
    unread: "unread",
    you: "You",
    about: "About",
    no_messages: "No messages yet.",
    message_label: "Your message",
    send: "Send",
    seen: "Seen",
    masked: "Contact details are hidden until the booking is confirmed.",
    attachment: "Attachment",
    contact_host: "Contact the host",
    contact_hint: "Ask about the home, the area or your dates. Contact details are shared once a booking is confirmed.",
    someone: "A member",
};

pub static FR: InboxWords = InboxWords {
    inbox: "Messages",
    no_conversations: "Aucun message pour l'instant. Posez une question à un hôte depuis la page de son logement.",
    unread: "non lus",
    you: "Vous",
    about: "À propos de",
    no_messages: "Aucun message pour l'instant.",
    message_label: "Votre message",
    send: "Envoyer",
    seen: "Vu",
    masked: "Les coordonnées sont masquées jusqu'à la confirmation de la réservation.",
    attachment: "Pièce jointe",
    contact_host: "Contacter l'hôte",
    contact_hint: "Posez vos questions sur le logement, le quartier ou vos dates. Les coordonnées sont partagées une fois la réservation confirmée.",
    someone: "Un membre",
};
