-- Parts of concatenated inbound messages (SMPP deliver_sm with a UDH or SAR TLVs). Each part is
-- acknowledged to the SMSC only once stored here; when the last one arrives the parts are joined
-- into one message and deleted in the same transaction. A part delivered twice is kept once.
CREATE TABLE inbound_parts (
    number      TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    reference   BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    body        TEXT    NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (number, sender, reference, total, seq)
);
