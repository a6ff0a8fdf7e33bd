DROP TABLE sms_messages;
DROP TABLE message_digests;
DROP TABLE push_subscriptions;
DROP TABLE phone_numbers;
DROP TABLE notification_preferences;
DROP TABLE notifications;
