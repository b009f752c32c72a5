#include "trapevent.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "trapnames.h"

/*
 * One object rather than an object per varbind: cheaper at trap rates,
 * and what a technician reads.  Values are cut at a character boundary,
 * so that a context stays bounded.
 */
json_t *trapevent_varbinds_json(const struct trap_msg *m)
{
	json_t *obj = json_object();

	for (size_t i = 0; i < m->nvb; i++) {
		const struct trap_varbind *v = &m->vb[i];
		char key[TRAP_OID_TEXT_MAX + 16], value[TRAPEVENT_VALUE_MAX + 32];
		size_t n = strlen(v->text);

		if (v->name != NULL)
			snprintf(key, sizeof(key), "%s%s%s", v->name,
				 v->index[0] ? "." : "", v->index);
		else
			trap_oid_format(v->oid.sub, v->oid.len, key, sizeof(key));
		/* The same object twice: keep both. */
		if (json_object_get(obj, key) != NULL) {
			size_t k = strlen(key);

			snprintf(key + k, sizeof(key) - k, "#%zu", i + 1);
		}
		if (n > TRAPEVENT_VALUE_MAX) {
			n = TRAPEVENT_VALUE_MAX;
			while (n > 0 && ((unsigned char)v->text[n] & 0xc0) == 0x80)
				n--;
		}
		if (v->label != NULL)
			snprintf(value, sizeof(value), "%s(%.*s)", v->label, (int)n,
				 v->text);
		else
			snprintf(value, sizeof(value), "%.*s", (int)n, v->text);
		json_object_set_new(obj, key, json_string(value));
	}
	return obj;
}

static void engine_hex(const struct trap_msg *m, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;

	for (size_t i = 0; i < m->engine_id_len && j + 2 < size; i++) {
		buf[j++] = hex[m->engine_id[i] >> 4];
		buf[j++] = hex[m->engine_id[i] & 0xf];
	}
	buf[j] = '\0';
}

char *trapevent_context(const struct trap_msg *m, const char *mapping)
{
	char oid[TRAP_OID_TEXT_MAX], engine[TRAP_ENGINE_ID_MAX * 2 + 1];
	json_t *ctx;
	char *text;

	trap_oid_format(m->trap_oid.sub, m->trap_oid.len, oid, sizeof(oid));
	ctx = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "source",
			m->source_text, "version", trap_version_name(m->version),
			"trap", m->trap_name ? m->trap_name : oid, "trap_oid", oid,
			"mapping", mapping, "request_id",
			(json_int_t)m->request_id, "varbinds",
			trapevent_varbinds_json(m));
	if (ctx == NULL)
		return xstrdup("{}");
	if (m->inform)
		json_object_set_new(ctx, "inform", json_true());
	if (m->has_uptime)
		json_object_set_new(ctx, "uptime", json_integer(m->uptime));
	if (m->has_agent_addr)
		json_object_set_new(ctx, "agent_addr",
				    json_string(m->agent_addr_text));
	if (m->version == TRAP_V3) {
		engine_hex(m, engine, sizeof(engine));
		json_object_set_new(ctx, "engine_id", json_string(engine));
		json_object_set_new(ctx, "user", json_string(m->user));
	}
	text = json_dumps(ctx, JSON_COMPACT);
	json_decref(ctx);
	return text ? text : xstrdup("{}");
}

void trapevent_inform_id(const struct trap_msg *m, const char *device,
			 const char *mapping, uint8_t id[16])
{
	crypto_generichash_state h;
	int64_t reqid = m->request_id;
	uint8_t uptime[5] = { 0 };

	/*
	 * The engine boots a v3 inform carries are ours, not the sender's:
	 * they change when we restart, and a retransmission across our
	 * restart must stay the same inform.  sysUpTime.0 is the sender's.
	 */
	if (m->has_uptime) {
		uptime[0] = 1;
		for (int i = 0; i < 4; i++)
			uptime[1 + i] = (uint8_t)(m->uptime >> (24 - 8 * i));
	}
	crypto_generichash_init(&h, NULL, 0, 16);
	crypto_generichash_update(&h, (const uint8_t *)device, strlen(device) + 1);
	crypto_generichash_update(&h, (const uint8_t *)mapping, strlen(mapping) + 1);
	crypto_generichash_update(&h, m->engine_id, m->engine_id_len);
	crypto_generichash_update(&h, (const uint8_t *)m->user, strlen(m->user) + 1);
	crypto_generichash_update(&h, (const uint8_t *)&reqid, sizeof(reqid));
	crypto_generichash_update(&h, uptime, sizeof(uptime));
	crypto_generichash_update(&h, (const uint8_t *)m->trap_oid.sub,
				  m->trap_oid.len * sizeof(m->trap_oid.sub[0]));
	for (size_t i = 0; i < m->nvb; i++)
		crypto_generichash_update(&h, (const uint8_t *)m->vb[i].text,
					  strlen(m->vb[i].text) + 1);
	crypto_generichash_final(&h, id, 16);
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x80);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

static char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

void trapevent_review_row(const struct trap_msg *m, int64_t now_ms,
			  struct trapreview_row *ret)
{
	const struct trap_varbind *sys_name;
	char oid[TRAP_OID_TEXT_MAX], engine[TRAP_ENGINE_ID_MAX * 2 + 1];
	json_t *vbs;

	memset(ret, 0, sizeof(*ret));
	trap_oid_format(m->trap_oid.sub, m->trap_oid.len, oid, sizeof(oid));
	engine_hex(m, engine, sizeof(engine));
	sys_name = trapmsg_find(m, trapnames_sysname0,
				ARRAY_SIZE(trapnames_sysname0));
	vbs = trapevent_varbinds_json(m);
	ret->received_ms = now_ms;
	ret->source = xstrdup(m->source_text);
	ret->version = xstrdup(trap_version_name(m->version));
	ret->agent_addr = m->has_agent_addr ? xstrdup(m->agent_addr_text) : NULL;
	ret->engine_id = dup_or_null(engine);
	ret->user = m->version == TRAP_V3 ? dup_or_null(m->user) : NULL;
	ret->sys_name = sys_name ? dup_or_null(sys_name->text) : NULL;
	ret->trap = xstrdup(m->trap_name ? m->trap_name : oid);
	ret->trap_oid = xstrdup(oid);
	ret->varbinds = json_dumps(vbs, JSON_COMPACT);
	if (ret->varbinds == NULL)
		ret->varbinds = xstrdup("{}");
	json_decref(vbs);
}
