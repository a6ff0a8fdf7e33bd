DROP TABLE conversation_admin_reads;
DROP TABLE contact_unlocks;
DROP TABLE message_attachments;
DROP TABLE messages;
DROP TABLE conversations;
