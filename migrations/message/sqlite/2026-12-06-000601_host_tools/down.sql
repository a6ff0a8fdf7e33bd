DROP TABLE scheduled_messages;
DROP TABLE quick_replies;
