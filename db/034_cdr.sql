-- Asterisk's own call records, written by cdr_pgsql (asterisk-conf/cdr_pgsql.conf) with its standard
-- columns plus linkedid (cdr_pgsql fills every column whose name is a CDR field). Read by the CTI to
-- protect callers who came and went while no CTI process was watching (cti/callbacks/cdr_sweep.py).
CREATE TABLE cdr (
    calldate    timestamptz NOT NULL DEFAULT now(),
    clid        varchar(80) NOT NULL DEFAULT '',
    src         varchar(80) NOT NULL DEFAULT '',
    dst         varchar(80) NOT NULL DEFAULT '',
    dcontext    varchar(80) NOT NULL DEFAULT '',
    channel     varchar(80) NOT NULL DEFAULT '',
    dstchannel  varchar(80) NOT NULL DEFAULT '',
    lastapp     varchar(80) NOT NULL DEFAULT '',
    lastdata    varchar(80) NOT NULL DEFAULT '',
    duration    bigint NOT NULL DEFAULT 0,
    billsec     bigint NOT NULL DEFAULT 0,
    disposition varchar(45) NOT NULL DEFAULT '',
    amaflags    bigint NOT NULL DEFAULT 0,
    accountcode varchar(20) NOT NULL DEFAULT '',
    uniqueid    varchar(150) NOT NULL DEFAULT '',
    userfield   varchar(255) NOT NULL DEFAULT '',
    linkedid    varchar(150) NOT NULL DEFAULT '',
    sequence    integer NOT NULL DEFAULT 0
);
CREATE INDEX cdr_calldate_idx ON cdr (calldate);
