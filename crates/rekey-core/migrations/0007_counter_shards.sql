-- Counters in shards. A count made inside a step (a mint, a delivery, a batch of strangers'
-- requests) locked its counter's one row until the step committed, so the steps of every
-- worker on every instance committed one behind another. Such a count now goes to one of
-- several rows of its name, and a counter reads their sum.
ALTER TABLE counters ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE counters DROP CONSTRAINT counters_pkey;
ALTER TABLE counters ADD PRIMARY KEY (name, shard);
