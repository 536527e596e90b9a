-- The DID an inbound caller dialled, in Asterisk's own CDR row. Our dialplan leaves `dst = s` in every
-- inbound row (captures 11-15), so a caller missed while no CTI watched was called back from the
-- default DID (R-OUT-CID). `[from-trunk]` sets CDR(cti_did)=${EXTEN}; cdr_pgsql fills every extra
-- column from the CDR variable of the same name (cdr_pgsql.c, "Arbitrary field").
ALTER TABLE cdr ADD COLUMN cti_did varchar(80) NOT NULL DEFAULT '';
