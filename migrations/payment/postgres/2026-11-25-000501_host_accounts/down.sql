DROP TABLE host_accounts;
