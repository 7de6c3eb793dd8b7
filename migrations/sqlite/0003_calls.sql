-- Voice calls. A call belongs to the subscription holding the number when it started (like
-- messages), so a number's next owner never sees the previous owner's calls. States:
-- initiated -> ringing -> in_progress -> completed, or busy / no_answer / failed / cancelled.
CREATE TABLE calls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT    NOT NULL UNIQUE,
    owner       INTEGER NOT NULL,
    number      TEXT    NOT NULL,
    direction   TEXT    NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    peer        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('initiated', 'ringing', 'in_progress', 'completed',
                                                  'busy', 'no_answer', 'failed', 'cancelled')),
    end_reason  TEXT,
    sip_code    INTEGER,
    created_at  INTEGER NOT NULL,
    answered_at INTEGER,
    ended_at    INTEGER
);
CREATE INDEX calls_history ON calls (owner, created_at, id);
-- One active call per number, enforced by the database (also across nodes).
CREATE UNIQUE INDEX calls_one_active ON calls (number) WHERE state IN ('initiated', 'ringing', 'in_progress');
