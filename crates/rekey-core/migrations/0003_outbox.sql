-- The outbox shared by every instance: claims, dead letters, the stand-ins' mail, and the
-- hold after trouble with the mail server.

-- A worker claims due mail until `claimed_until`; no other claim takes it before then, and
-- another worker takes it after, should the first have died.
ALTER TABLE outbox ADD COLUMN claimed_until bigint NOT NULL DEFAULT 0;

-- Mail that will not be delivered, and why (`died_at`: when). A dead reset or verification
-- mail keeps no message.
CREATE TABLE dead_letters (
    id              bigint PRIMARY KEY,
    kind            text NOT NULL,
    sender          text NOT NULL,
    recipient       text NOT NULL,
    sealed          text,
    created_at      bigint NOT NULL,
    attempts        integer NOT NULL,
    next_attempt_at bigint NOT NULL,
    last_error      text,
    expires_at      bigint,
    reason          text NOT NULL,
    died_at         bigint NOT NULL
);

-- What a reset request that gets no mail queues in place of one: the outbox's columns, ids
-- from `outbox_ids`, sealed the same way. The worker goes through the motions of sending it
-- and deletes it.
CREATE TABLE stand_in_mail (
    id              bigint PRIMARY KEY,
    kind            text NOT NULL,
    sender          text NOT NULL,
    recipient       text NOT NULL,
    sealed          text,
    created_at      bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    last_error      text,
    expires_at      bigint,
    claimed_until   bigint NOT NULL DEFAULT 0
);

-- One row: server-level failures in a row and until when the whole queue waits for the
-- server, and the last delivery problem in words.
CREATE TABLE outbox_state (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    hold_failures integer NOT NULL DEFAULT 0,
    hold_until    bigint NOT NULL DEFAULT 0,
    last_error    text
);
INSERT INTO outbox_state DEFAULT VALUES;
