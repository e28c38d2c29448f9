-- The language each account's mail is written in (a BCP 47 tag like de or de-AT), chosen at
-- registration and changed by its owner or an operator; NULL: the install's `locale`.
ALTER TABLE users ADD COLUMN locale text;
ALTER TABLE pending ADD COLUMN locale text;
