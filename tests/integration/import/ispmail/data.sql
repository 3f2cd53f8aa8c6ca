-- Rows for the tutorial's tables (schema.sql), each exercising one field or
-- quirk.  The hashes are real ones of their forms; the tutorial's own test
-- rows (alice, bob, carl with alice123, bob123, carl123) are among them.
-- What the importer must report is in expected-report.tsv, written from
-- this file.
INSERT INTO domains (domain) VALUES
('example.com'),
('123qwe.com'),
('Example.NET'),                  -- upper case: Postfix (lower case) never found it
('münchen.de');                   -- a U-label: Postfix looked up xn--mnchen-3ya.de

INSERT INTO users (local, domain, password_hash, display_name) VALUES
-- the tutorial's test data: argon2id without {SCHEME}, default_pass_scheme ARGON2ID
('alice','example.com','$argon2id$v=19$m=16,t=2,p=1$QUplUG8wTnc0V0dCczFYcQ$MtOlTfFTDeUb/aVv9nj9Fg', 'Alice Smith'),
('bob','example.com','$argon2id$v=19$m=16,t=2,p=1$c0swTXl5OTFiUXFZNHlFdA$2R3pzVbXY5KlQ58npSZViQ', NULL),
('carl','123qwe.com','$argon2id$v=19$m=16,t=2,p=1$bE43MUFpa21iQWJWR1dCUA$sC/zUoW8YtcWghrKd645Vg', ''),
-- prefixed: kept as is
('dora','example.com','{ARGON2ID}$argon2id$v=19$m=16,t=2,p=1$QUplUG8wTnc0V0dCczFYcQ$MtOlTfFTDeUb/aVv9nj9Fg', NULL),
('erik','example.com','{SHA512-CRYPT}$6$saltsalt$ujMKP5sAfQ/V3SToSC9McDx/Ep000u7/5tdyxsgNJbyKREiDB3osrDGBWi4Ur9AOIakHvtR7AWRAjmCi5CChO0', NULL),
-- bare crypt forms: ARGON2ID (the old default) never verified them
('fred','example.com','$6$saltsalt$ujMKP5sAfQ/V3SToSC9McDx/Ep000u7/5tdyxsgNJbyKREiDB3osrDGBWi4Ur9AOIakHvtR7AWRAjmCi5CChO0', NULL),
('gina','example.com','$5$saltsalt$c0b2qMYrP7CbD3I7LleWOsQsBrgGBm9wXygMVnAePW1', NULL),
('hans','example.com','$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', NULL),
('ines','example.com','$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7', NULL),
-- refused schemes and forms: no password
('md5','example.com','$1$abcdefgh$0123456789abcdefghijkl', NULL),
('plain','example.com','{PLAIN}alice123', NULL),
('weak','example.com','$argon2i$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc', NULL),
-- no form at all: ARGON2ID could not verify it either
('hex','example.com','5f4dcc3b5aa765d61d8327deb882cf99', NULL),
('nopw','example.com',NULL, NULL),
-- case: Postfix never found Max; max and Max are twins
('max','example.com','$argon2id$v=19$m=16,t=2,p=1$bE43MUFpa21iQWJWR1dCUA$sC/zUoW8YtcWghrKd645Vg', NULL),
('Max','example.com','$argon2id$v=19$m=16,t=2,p=1$c0swTXl5OTFiUXFZNHlFdA$2R3pzVbXY5KlQ58npSZViQ', 'Max Twin'),
('Nora','example.com','$argon2id$v=19$m=16,t=2,p=1$c0swTXl5OTFiUXFZNHlFdA$2R3pzVbXY5KlQ58npSZViQ', NULL),
('sue','Example.NET','$argon2id$v=19$m=16,t=2,p=1$c0swTXl5OTFiUXFZNHlFdA$2R3pzVbXY5KlQ58npSZViQ', NULL),
-- logins Dovecot's auth_username_chars refused
('o''brien','example.com','$argon2id$v=19$m=16,t=2,p=1$c0swTXl5OTFiUXFZNHlFdA$2R3pzVbXY5KlQ58npSZViQ', 'Pat O''Brien'),
('jörg','münchen.de','$argon2id$v=19$m=16,t=2,p=1$c0swTXl5OTFiUXFZNHlFdA$2R3pzVbXY5KlQ58npSZViQ', 'Jörg Müller'),
-- not a local part mailroster takes
('a+b','example.com','$argon2id$v=19$m=16,t=2,p=1$c0swTXl5OTFiUXFZNHlFdA$2R3pzVbXY5KlQ58npSZViQ', NULL);

INSERT INTO aliases (source_local, source_domain, destination_local, destination_domain) VALUES
-- the tutorial's test data (orders is in example.com, as its INSERT has it)
('boss', 'example.com', 'alice', 'example.com'),
('postmaster','example.com','alice','example.com'),
('secretary', 'example.com', 'bob', 'example.com'),
('orders', 'example.com', 'carl', '123qwe.com'),
-- an alias sharing a mailbox's address: alice's mail went to carl
('alice', 'example.com', 'carl', '123qwe.com'),
-- upper case source: never matched
('Sales', 'example.com', 'bob', 'example.com'),
-- empty source_local: Postfix never queries an empty %u
('', 'example.com', 'bob', 'example.com'),
-- U-label domain, cross-domain
('info', 'münchen.de', 'jörg', 'münchen.de'),
('webmaster', 'Example.NET', 'sue', 'Example.NET');

INSERT into shared_mailboxes (shared_mailbox_local, shared_mailbox_domain, shared_to_local, shared_to_domain) VALUES
('alice', 'example.com', 'bob', 'example.com'),
('carl', '123qwe.com', 'dora', 'example.com');
