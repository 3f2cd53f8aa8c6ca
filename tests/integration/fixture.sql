-- The edge cases every lookup test uses: uppercase input is the tests' job;
-- here a catch-all, a multi-destination alias, an alias to a remote
-- address, a disabled mailbox, a disabled domain, an IDN domain, a
-- domain-rewrite alias, a disabled alias and extra sender addresses.
INSERT INTO mailroster.domains (name) VALUES ('example.com'), ('xn--mnchen-3ya.de');
INSERT INTO mailroster.domains (name, enabled, disabled_reason) VALUES ('off.example', false, 'unpaid');
INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
  SELECT id, lp, '{SHA512-CRYPT}$6$salt$' || repeat('a', 86) FROM mailroster.domains,
    unnest(ARRAY['alice', 'bob', 'o''brien']) lp WHERE name = 'example.com';
INSERT INTO mailroster.mailboxes (domain_id, local_part, enabled, disabled_reason)
  SELECT id, 'carol', false, 'left' FROM mailroster.domains WHERE name = 'example.com';
INSERT INTO mailroster.mailboxes (domain_id, local_part, may_receive)
  SELECT id, 'norecv', false FROM mailroster.domains WHERE name = 'example.com';
INSERT INTO mailroster.mailboxes (domain_id, local_part)
  SELECT id, 'dave' FROM mailroster.domains WHERE name = 'off.example';
INSERT INTO mailroster.mailboxes (domain_id, local_part)
  SELECT id, 'hans' FROM mailroster.domains WHERE name = 'xn--mnchen-3ya.de';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT id, 'info', ARRAY['alice@example.com', 'bob@example.com'] FROM mailroster.domains WHERE name = 'example.com';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT id, '', ARRAY['alice@example.com'] FROM mailroster.domains WHERE name = 'example.com';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT id, 'fwd', ARRAY['someone@remote.example'] FROM mailroster.domains WHERE name = 'example.com';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations, enabled)
  SELECT id, 'old', ARRAY['bob@example.com'], false FROM mailroster.domains WHERE name = 'example.com';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT id, '', ARRAY['@example.com'] FROM mailroster.domains WHERE name = 'xn--mnchen-3ya.de';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT id, 'sales', ARRAY['dave@off.example'] FROM mailroster.domains WHERE name = 'off.example';
INSERT INTO mailroster.sender_addresses (mailbox_id, address)
  SELECT m.id, 'boss@example.com' FROM mailroster.mailboxes m WHERE local_part IN ('alice', 'bob');
