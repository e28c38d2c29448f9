-- What every instance of one install shares besides records: its identity, its secrets,
-- and what stand-ins (requests that get no mail) write in place of an account's records.

-- Named values: the install's id, when pruning last ran.
CREATE TABLE meta (
    name  text PRIMARY KEY,
    value text NOT NULL
);

-- Every `iss` this install's links have carried: a link mailed before `public_url` changed
-- still works.
CREATE TABLE issuers (
    issuer text PRIMARY KEY,
    added  bigserial
);

-- The signing keys (JSON, as sled's keys.json) and the key queued mail is sealed with, shared
-- by every instance: no key file to copy, and a rotation one instance makes is seen by the
-- others. The database is the boundary that protects them, as it protects the hashes.
CREATE TABLE secrets (
    name  text PRIMARY KEY,
    value text NOT NULL
);

-- A stand-in's audit event, written where an account's would be appended, under one key so
-- it never grows.
CREATE TABLE stand_in_events (
    name  text PRIMARY KEY,
    event text NOT NULL
);
