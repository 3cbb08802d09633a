#!/usr/bin/python3
"""ct-gate: no variable-time compare touches tags, keys or MACs.

security.md rule 9: tags, MACs, keys and other secrets are compared with
sodium_memcmp / crypto_verify_* only (libsodium's AEAD and signature checks
do it internally). This gate greps libe2e/, proxy/, subscriber/ and keytool/
for memcmp, strcmp, strncmp, bcmp, strcasecmp and strncasecmp; every hit must
match an entry of ALLOW below: (file, a piece of the line, why the compared
bytes are not secret). A new compare fails the gate until someone reviews it
and adds it here. Entries that match nothing are listed (stale), not fatal.

Usage: ct_gate.py [SOURCE_ROOT]     (default: E2E_SRC or ../.. of this file)
"""
import os
import re
import sys

DIRS = ("libe2e", "proxy", "subscriber", "keytool")
CALL = re.compile(r"\b(memcmp|strcmp|strncmp|bcmp|strcasecmp|strncasecmp)\s*\(")

# (file, substring of the line or "*" for every compare in the file, reason)
ALLOW = [
    ("libe2e/control/ticket.c", "memcmp(text, TOKEN_PREFIX", "the token's fixed prefix 'e2et1-': public"),
    ("libe2e/control/ticket.c", "memcmp(t, E2E_CTL_REPLY_PREFIX", "reply topic prefix: public"),
    ("libe2e/control/ticket_store.c", "memcmp(t->used[i].req_hash", "req_hash of a REDEEM the broker "
     "saw: public"),
    ("libe2e/client/redeem.c", "strcmp(topic, r->sent.reply_topic)", "MQTT topics: public"),
    ("libe2e/client/fleet_sub.c", "strncmp(topic", "control topic prefix: public"),
    ("libe2e/sender/fleet.c", "strncmp(topic", "control topic prefix: public"),
    ("libe2e/client/publisher.c", "strncmp(topic", "control topic prefix: public"),
    ("keytool/cmd_revoke_list.c", "strncmp(line, fpr", "fingerprints in the issued log: public"),
    ("keytool/cmd_revoke_list.c", "\"e2e:\", 4", "fingerprint prefix: public"),
    ("libe2e/control/revlist.c", "memcmp(rl->keys + 32U * i, sign_pk", "revoked public signing keys"),
    ("libe2e/control/revstate.c", "memcmp(rs->e[i].fp, fp", "authority fingerprints: public"),
    ("libe2e/control/keysvc_cred.c", "memcmp(&cred->holder, &req->requester", "public keys of credential and request"),
    ("libe2e/keys/cred.c", "memcmp(c->rules[i].filter, filter", "credential topic filter vs map filter: public"),
    ("libe2e/keys/cred.c", "memcmp(au->a[i].fp, fp", "authority fingerprint lookup: public"),
    ("keytool/cmd_authority.c", "strcmp(argv[1]", "subcommand words: public"),
    ("libe2e/keys/scopes.c", "memcmp(filter + fi, topic + ti", "topic filter vs topic name: public"),
    ("libe2e/keys/scopes.c", "\"default\"", "scope name from the scopes file: public"),
    ("libe2e/keys/scopes.c", "memcmp(s->scope[i].name, name", "scope names: public"),
    ("libe2e/state/fileio.c", "strncmp(fp, name, nl)", "E2E_FAILPOINT test hook name: public"),
    ("libe2e/state/fileio.c", "magic, E2E_STATE_MAGIC_LEN", "file magic string: public constant"),
    ("libe2e/envelope/rxstate.c", "MAGIC_V1, MAGIC_LEN", "file magic string: public constant"),
    ("libe2e/base/topichash.h", "memcmp(topic, t->last, len)", "topic name cache: topics are public"),
    ("libe2e/envelope/rx.c", "memcmp(m->topic, topic, topic_len)", "topic -> scope memo: topics are public"),
    ("libe2e/state/textfile.c", "memcmp(f->p, word, wl)", "keyword of a text file line: public"),
    ("libe2e/sender/sender.c", "s->control_topic", "refusing publishes to the control topic: public"),
    ("libe2e/sender/sender.c", "E2E_CTL_REPLY_PREFIX", "refusing publishes to e2e/k/: public prefix"),
    ("libe2e/keys/identity.c", "SECRET_TAG", "the literal 'e2e-secret1 ' line prefix, not the secret"),
    ("libe2e/keys/identity.c", "PUBLIC_TAG", "the literal 'e2e1 ' line prefix"),
    ("libe2e/keys/enroll.c", "pub.sign_pk", "public signing keys: sorting and duplicate detection"),
    ("proxy/audit.c", "memcmp(v[i].key, key", "subscribers' public signing keys (enrollment log)"),
    ("proxy/audit.c", "memcmp(o->scopes, nv[i].scopes", "allowed-scope bitmaps of `enrolled`: public"),
    ("proxy/setup.c", "strcmp(nc.metrics_listen", "metrics-listen address from the configuration"),
    ("libe2e/keys/enroll.c", "name", "peer names in enrolled/trust files: public"),
    ("libe2e/keys/enroll_edit.c", "name", "peer names in enrolled/trust files: public"),
    ("libe2e/control/control.c", "E2E_CTL_REPLY_PREFIX", "reply topic prefix 'e2e/k/': public"),
    ("libe2e/client/client.c", "*", "topic names and subscription filters: public"),
    ("libe2e/client/clientbase.c", "*", "subscription filters and topics: public"),
    ("libe2e/client/session_sub.c", "filter", "subscription filters: public"),
    ("libe2e/client/session_conn.c", "lost", "broker addresses: public"),
    ("libe2e/client/session_conn.c", "uri", "broker URIs: public"),
    ("libe2e/client/publisher.c", "control_topic", "control topic name: public"),
    ("proxy/config.c", "*", "option names and values of the configuration: public"),
    ("proxy/mqtt_codec.c", "name_v31", "MQTT protocol name 'MQIsdp': public"),
    ("proxy/mqtt_codec.c", "name_v311", "MQTT protocol name 'MQTT': public"),
    ("proxy/creds.c", "client_id", "MQTT client ids (the password is injected, not compared)"),
    ("proxy/tls.c", "tls_min", "TLS version option: public"),
    ("proxy/relay.c", "px->service_id", "MQTT client ids: public"),
    ("proxy/setup.c", "(a && strcmp(a, b))", "configuration values compared on SIGHUP: public"),
    ("proxy/setup.c", "nc.listen[i]", "listen addresses compared on SIGHUP: public"),
    ("libe2e/base/duration.c", "units[i].unit", "duration unit suffixes: public"),
    ("ops/cliopts.c", "*", "command-line option values: public"),
    ("subscriber/sub_main.c", "\"none\"", "--state none: public option value"),
    ("subscriber/cliparity.c", "*", "command-line option names and values (-L URL, --tls-version, -x): public"),
    ("subscriber/sub_session.c", "filter", "-T topic filter vs received topic name: public"),
    ("subscriber/sub_session.c", "broker", "broker addresses: public"),
    ("keytool/cmd_identity.c", "\"-\"", "'-' (stdin/stdout) as a file name argument: public"),
    ("subscriber/pub_props.c", "*", "-D command and property names: public"),
    ("keytool/opts.c", "*", "command-line option values and units: public"),
    ("keytool/main.c", "*", "subcommand names: public"),
    ("keytool/cmd_trust.c", "name", "peer names: public"),
    ("keytool/cmd_enroll.c", "name", "peer names: public"),
    ("keytool/files.c", "*", "peer names and '-' (stdin): public"),
]

SECRETISH = re.compile(r"(tag|mac|secret|_sk\b|\bsk\b|psk|digest|nonce|sig\b|signature|"
                       r"eph|\bkey\b|->key|\.key|hash)", re.I)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    root = argv[1] if len(argv) > 1 else os.environ.get("E2E_SRC") or os.path.join(here, "..", "..")
    used = set()
    bad = []
    n = 0
    for d in DIRS:
        for dirpath, _dirs, files in os.walk(os.path.join(root, d)):
            for fn in sorted(files):
                if not fn.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, fn)
                rel = os.path.relpath(path, root)
                with open(path, errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        if not CALL.search(line) or line.lstrip().startswith(("*", "/*", "//")):
                            continue
                        n += 1
                        hit = [i for i, (af, sub, _r) in enumerate(ALLOW)
                               if af == rel and (sub == "*" or sub in line)]
                        if hit:
                            used.update(hit)
                        else:
                            warn = " (names something secret-looking)" if SECRETISH.search(line) \
                                else ""
                            bad.append("%s:%d: unreviewed compare%s: %s" % (
                                rel, lineno, warn, line.strip()))
    for i, (af, sub, reason) in enumerate(ALLOW):
        if i not in used:
            print("ct-gate: note: allowlist entry matches nothing (stale?): %s %r (%s)" % (
                af, sub, reason))
    for b in bad:
        print("ct-gate: " + b)
    if bad:
        print("ct-gate: %d of %d compares not reviewed. Tags, keys and MACs must be compared "
              "with sodium_memcmp/crypto_verify_*; a compare of public bytes goes into ALLOW in "
              "%s with the reason." % (len(bad), n, os.path.relpath(__file__, root)))
        return 1
    print("ct-gate: %d compares, all on reviewed public data" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
