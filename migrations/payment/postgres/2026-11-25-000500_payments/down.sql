DROP TABLE sim_refunds;
DROP TABLE sim_intents;
DROP TABLE webhook_events;
DROP TABLE ledger_entries;
DROP TABLE ledger_transactions;
DROP TABLE payouts;
DROP TABLE payments;
