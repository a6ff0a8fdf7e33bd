DROP INDEX calendar_nights_source;
DROP TABLE calendar_imports;
