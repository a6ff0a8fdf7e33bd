-- Platform counters per month (`month` is its first day), kept with the
-- days: a report over a long period reads its whole months here and only
-- the days at its ends from `platform_daily`.
CREATE TABLE platform_monthly (
    month DATE NOT NULL,
    metric TEXT NOT NULL,
    currency TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (month, metric, currency)
);
INSERT INTO platform_monthly (month, metric, currency, value)
    SELECT date_trunc('month', day)::date, metric, currency, SUM(value)
    FROM platform_daily GROUP BY 1, 2, 3;
