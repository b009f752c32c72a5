/*
 * Fuzz target for the trap mappings: a mapping file, then a trap.
 *
 * Input: YAML text of a mappings file, a NUL byte, then the trap: its OID
 * on the first line, then one varbind per line, "OID value" (the value's
 * bytes are raw, as a device would send them).  The file goes through
 * the same parser as the files of traps.mappings_dir, the trap through
 * trapmap_apply() against the file's mappings and the built-ins.
 *
 *   make fuzz && build/fuzz/fuzz_trapmap -max_total_time=60 corpus-dir
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../server/trapmap.h"
#include "../../server/trapmsg.h"

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

/* "OID value" lines into m; lines that are not that are skipped. */
static void parse_trap(struct trap_msg *m, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	bool first = true;

	m->version = TRAP_V2C;
	strcpy(m->source_text, "192.0.2.1");
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
			} else {
				struct trap_varbind *v = trapmsg_add_varbind(m, 64);

				if (v != NULL && trap_oid_parse(oid, &v->oid) == 0) {
					v->type = TRAP_VALUE_STRING;
					v->text = sp ? trapmsg_store_bytes(m, sp + 1,
									   (size_t)(le - sp - 1))
						     : "";
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
	trapmap_apply(map, &m, "fuzz-device", &r);
	trapmsg_free(&m);
	trapmap_free(map);
	free(yaml);
	return 0;
}
