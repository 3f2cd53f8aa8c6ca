/* admproto.c - admin line protocol: splitting and quoting. */
#include "config.h"

#include <string.h>

#include "admproto.h"
#include "codec.h"

void adm_args_init(struct adm_args *a)
{
    a->argc = 0;
    buf_init(&a->store);
}

void adm_args_free(struct adm_args *a)
{
    buf_free(&a->store);
    a->argc = 0;
}

int adm_split(struct adm_args *a, const char *line, size_t len, const char **why)
{
    size_t i = 0;
    size_t offs[ADM_MAX_ARGS];

    a->argc = 0;
    buf_reset(&a->store);
    if (len > ADM_MAX_LINE) {
        *why = "line too long";
        return -1;
    }
    for (;;) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            break;
        if (a->argc == ADM_MAX_ARGS) {
            *why = "too many words";
            return -1;
        }
        offs[a->argc++] = a->store.len;
        if (line[i] == '"') {
            i++;
            for (;;) {
                if (i == len) {
                    *why = "unterminated quote";
                    return -1;
                }
                char c = line[i++];
                if (c == '"')
                    break;
                if (c != '\\') {
                    if ((unsigned char)c < 0x20 && c != '\t') {
                        *why = "control character in a word";
                        return -1;
                    }
                    buf_addc(&a->store, c);
                    continue;
                }
                if (i == len) {
                    *why = "backslash at the end of the line";
                    return -1;
                }
                c = line[i++];
                switch (c) {
                case '"': case '\\': buf_addc(&a->store, c); break;
                case 'n': buf_addc(&a->store, '\n'); break;
                case 't': buf_addc(&a->store, '\t'); break;
                case 'r': buf_addc(&a->store, '\r'); break;
                case 'x': {
                    int hi = i < len ? hex_digit((unsigned char)line[i]) : -1;
                    int lo = i + 1 < len ? hex_digit((unsigned char)line[i + 1]) : -1;
                    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                        *why = "bad \\x escape";
                        return -1;
                    }
                    buf_addc(&a->store, (char)(hi << 4 | lo));
                    i += 2;
                    break;
                }
                default:
                    *why = "unknown backslash escape";
                    return -1;
                }
            }
            if (i < len && line[i] != ' ' && line[i] != '\t') {
                *why = "text right after a closing quote";
                return -1;
            }
        } else {
            while (i < len && line[i] != ' ' && line[i] != '\t') {
                unsigned char c = (unsigned char)line[i++];
                if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
                    *why = c == '"' ? "quote inside a word" : c == '\\' ? "backslash outside quotes"
                                                                        : "control character in a word";
                    return -1;
                }
                buf_addc(&a->store, (char)c);
            }
        }
        buf_addc(&a->store, 0);
    }
    for (int k = 0; k < a->argc; k++)
        a->argv[k] = a->store.data + offs[k];
    return 0;
}

void adm_quote(struct buf *out, const char *s)
{
    int plain = *s != 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
            plain = 0;
    if (plain) {
        buf_adds(out, s);
        return;
    }
    buf_addc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': buf_adds(out, "\\\""); break;
        case '\\': buf_adds(out, "\\\\"); break;
        case '\n': buf_adds(out, "\\n"); break;
        case '\t': buf_adds(out, "\\t"); break;
        case '\r': buf_adds(out, "\\r"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                buf_printf(out, "\\x%02x", *p);
            else
                buf_addc(out, (char)*p);
        }
    }
    buf_addc(out, '"');
}

void adm_field(struct buf *out, const char *key, const char *value)
{
    struct buf w;
    buf_init(&w);
    buf_adds(&w, key);
    buf_addc(&w, '=');
    buf_adds(&w, value ? value : "");
    buf_addc(out, ' ');
    adm_quote(out, w.data);
    buf_free(&w);
}
