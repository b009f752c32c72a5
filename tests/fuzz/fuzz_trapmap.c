/*
 * Fuzz target for the trap mappings: a mapping file, then a trap.
 *
 * Input: YAML text of a mappings file, a NUL byte, then the trap: its OID
 * on the first line, optionally followed by words that set what else a
 * template or condition can look at (v1, v3, inform, agent=IPv4,
 * user=NAME, engine=HEX), then one varbind per line, "OID value".  A value
 * is text (raw bytes, as a device would send them) unless it starts with
 * a type: "i:" INTEGER, "u:" an unsigned type, "o:" an OID, "a:" an
 * IpAddress, "n:" NULL.  Varbinds get their built-in names, instances and
 * enumeration labels as the decoder gives them.  The file goes through
 * the same parser as the files of traps.mappings_dir, the trap through
 * trapmap_apply() and every further clear against the file's mappings
 * and the built-ins.
 *
 *   make fuzz && build/fuzz/fuzz_trapmap -max_total_time=60 corpus-dir
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/trapmap.h"
#include "../../server/trapmsg.h"
#include "../../server/trapnames.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load(struct trapmap *map, const char *yaml)
{
	struct cfg *fc, *errors;

	if (cfg_load_string("fuzz.yaml", yaml, &fc) < 0)
		return;
	if (fc->nerrors == 0)
		trapmap_add_file(map, fc, NULL, NULL);
	cfg_finish(fc);
	cfg_free(fc);
	if (cfg_load_string("errors", "", &errors) < 0)
		return;
	trapmap_finish(map, errors);
	cfg_free(errors);
}

/* The words after the trap OID: what else the trap says of itself. */
static void parse_words(struct trap_msg *m, const char *text)
{
	char buf[256], *save = NULL;

	strlcpy_safe(buf, text, sizeof(buf));
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (strcmp(w, "v1") == 0) {
			m->version = TRAP_V1;
		} else if (strcmp(w, "v3") == 0) {
			m->version = TRAP_V3;
		} else if (strcmp(w, "inform") == 0) {
			m->inform = true;
		} else if (strncmp(w, "agent=", 6) == 0 &&
			   inet_pton(AF_INET, w + 6, &m->agent_addr) == 1) {
			m->has_agent_addr = true;
			strlcpy_safe(m->agent_addr_text, w + 6,
				     sizeof(m->agent_addr_text));
		} else if (strncmp(w, "user=", 5) == 0) {
			strlcpy_safe(m->user, w + 5, sizeof(m->user));
		} else if (strncmp(w, "engine=", 7) == 0) {
			size_t n = strlen(w + 7) / 2;

			m->engine_id_len = n > TRAP_ENGINE_ID_MAX ? TRAP_ENGINE_ID_MAX : n;
			memcpy(m->engine_id, w + 7, m->engine_id_len);
		}
	}
}

/* A value of type tag ("i:5") or text into v. */
static void set_value(struct trap_msg *m, struct trap_varbind *v,
		      const uint8_t *p, size_t n)
{
	char text[TRAP_OID_TEXT_MAX];
	size_t len = n < sizeof(text) - 1 ? n : sizeof(text) - 1;
	struct trap_oid o;
	int64_t num;

	memcpy(text, p, len);
	text[len] = '\0';
	v->type = TRAP_VALUE_STRING;
	if (len >= 2 && text[1] == ':') {
		switch (text[0]) {
		case 'i':
		case 'u':
			if (parse_int64(text + 2, &num) == 0) {
				v->type = text[0] == 'i' ? TRAP_VALUE_INTEGER
							 : TRAP_VALUE_UNSIGNED;
				v->num = num;
				v->text = trapmsg_store(m, text + 2, strlen(text + 2));
				return;
			}
			break;
		case 'o':
			if (trap_oid_parse(text + 2, &o) == 0) {
				v->type = TRAP_VALUE_OID;
				v->text = trapmsg_store(m, text + 2, strlen(text + 2));
				return;
			}
			break;
		case 'a':
			v->type = TRAP_VALUE_IPADDRESS;
			v->text = trapmsg_store(m, text + 2, strlen(text + 2));
			return;
		case 'n':
			v->type = TRAP_VALUE_NULL;
			v->text = "";
			return;
		}
	}
	v->text = trapmsg_store_bytes(m, p, n);
}

/* Its built-in name, instance and label, as the decoder would give them. */
static void name_varbind(struct trap_msg *m, struct trap_varbind *v)
{
	const struct trapname *n = trapnames_by_oid(v->oid.sub, v->oid.len);
	char index[TRAP_OID_TEXT_MAX];

	if (n == NULL)
		return;
	v->name = n->name;
	trap_oid_format(v->oid.sub + n->len, v->oid.len - n->len, index,
			sizeof(index));
	v->index = trapmsg_store(m, index, strlen(index));
	if (v->type == TRAP_VALUE_INTEGER)
		v->label = trapnames_label(n, v->num);
}

/* The trap lines into m; lines that are not "OID value" are skipped. */
static void parse_trap(struct trap_msg *m, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	bool first = true;

	m->version = TRAP_V2C;
	strlcpy_safe(m->source_text, "192.0.2.1", sizeof(m->source_text));
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *le = nl ? nl : end;
		const uint8_t *sp = memchr(p, ' ', (size_t)(le - p));
		char oid[TRAP_OID_TEXT_MAX];
		size_t olen = (size_t)((sp ? sp : le) - p);

		if (olen < sizeof(oid)) {
			memcpy(oid, p, olen);
			oid[olen] = '\0';
			if (first) {
				if (trap_oid_parse(oid, &m->trap_oid) == 0)
					m->trap_name = trapmsg_store(m, oid, olen);
				if (sp != NULL) {
					char words[256];
					size_t wl = (size_t)(le - sp - 1);

					wl = wl < sizeof(words) - 1 ? wl : sizeof(words) - 1;
					memcpy(words, sp + 1, wl);
					words[wl] = '\0';
					parse_words(m, words);
				}
			} else {
				struct trap_varbind *v = trapmsg_add_varbind(m, 64);

				if (v != NULL && trap_oid_parse(oid, &v->oid) == 0) {
					if (sp != NULL)
						set_value(m, v, sp + 1,
							  (size_t)(le - sp - 1));
					else
						v->text = "";
					name_varbind(m, v);
				} else if (v != NULL) {
					m->nvb--;
				}
			}
		}
		first = false;
		p = nl ? nl + 1 : end;
	}
	if (m->trap_name == NULL)
		m->trap_name = "";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t ylen = nul ? (size_t)(nul - data) : size;
	char *yaml = malloc(ylen + 1);
	struct trapmap *map = trapmap_new();
	struct trapmap_result r;
	struct trap_msg m;

	memcpy(yaml, data, ylen);
	yaml[ylen] = '\0';
	load(map, yaml);
	trapmsg_init(&m);
	if (nul != NULL)
		parse_trap(&m, nul + 1, size - ylen - 1);
	if (trapmap_apply(map, &m, "fuzz-device", &r) >= 0)
		while (trapmap_next_clear(map, &m, "fuzz-device", &r) == 1)
			;
	trapmsg_free(&m);
	trapmap_free(map);
	free(yaml);
	return 0;
}
