-- The time zone each account's mail writes times in (an IANA name like Europe/Berlin), set
-- by the app from its computer's zone or through the API; NULL: UTC.
ALTER TABLE users ADD COLUMN time_zone text;
