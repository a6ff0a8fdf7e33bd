//! The words of the inbox and notifications pages in each language;
//! [`crate::locale::Messages`] holds them as `i` and `n`.

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
    pub attach: &'static str,
    pub attach_hint: &'static str,
    pub contact_host: &'static str,
    pub contact_hint: &'static str,
    pub someone: &'static str,
    pub typing: &'static str,
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
    attach: "Attach photos or a PDF",
    attach_hint: "JPEG, PNG, WebP or PDF; up to 10 files of 10 MB.",
    contact_host: "Contact the host",
    contact_hint: "Ask about the home, the area or your dates. Contact details are shared once a booking is confirmed.",
    someone: "A member",
    typing: "is typing…",
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
    attach: "Joindre des photos ou un PDF",
    attach_hint: "JPEG, PNG, WebP ou PDF ; jusqu’à 10 fichiers de 10 Mo.",
    contact_host: "Contacter l'hôte",
    contact_hint: "Posez vos questions sur le logement, le quartier ou vos dates. Les coordonnées sont partagées une fois la réservation confirmée.",
    someone: "Un membre",
    typing: "écrit…",
};

pub struct NotificationWords {
    pub notifications: &'static str,
    pub none: &'static str,
    pub read_all: &'static str,
    pub mark_read: &'static str,
    /// After the header's count of unread notifications.
    pub unread: &'static str,
}

pub static NOTIFICATIONS_EN: NotificationWords = NotificationWords {
    notifications: "Notifications",
    none: "Nothing new.",
    read_all: "Mark all as read",
    mark_read: "Mark as read",
    unread: "unread",
};

pub static NOTIFICATIONS_FR: NotificationWords = NotificationWords {
    notifications: "Notifications",
    none: "Rien de nouveau.",
    read_all: "Tout marquer comme lu",
    mark_read: "Marquer comme lu",
    unread: "non lues",
};
