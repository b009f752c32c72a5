#include "trapmap.h"

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"
#include "trapnames.h"

#define TEMPLATE_MAX 4096
#define MAPPINGS_MAX 10000
#define ALTERNATIVES_MAX 8
#define NAME_MAX_LEN 64
/*
 * A regular expression sees at most this much of a value, and is at most
 * this long: glibc's matcher is polynomial without back-references (which
 * are refused), but a trap must not buy seconds of it with a long value.
 */
#define REGEX_TEXT_MAX 1024
#define REGEX_MAX 1024

/* What a template variable or a condition looks at. */
enum ref_kind {
	REF_VARBIND,   /* the value of the first varbind under oid */
	REF_INDEX,     /* its instance: the sub-ids after oid */
	REF_DEVICE,
	REF_SOURCE,
	REF_AGENT_ADDR,
	REF_TRAP,
	REF_TRAP_OID,
	REF_VERSION,
	REF_USER,
	REF_ENGINE_ID,
	REF_VARBINDS, /* every varbind as name=value */
};

static const struct {
	const char *name;
	enum ref_kind kind;
} specials[] = {
	{ "device", REF_DEVICE },	  { "source", REF_SOURCE },
	{ "agent_addr", REF_AGENT_ADDR }, { "trap", REF_TRAP },
	{ "trap_oid", REF_TRAP_OID },	  { "version", REF_VERSION },
	{ "user", REF_USER },		  { "engine_id", REF_ENGINE_ID },
	{ "varbinds", REF_VARBINDS },
};

struct ref {
	enum ref_kind kind;
	struct trap_oid oid; /* REF_VARBIND, REF_INDEX */
};

/* A literal, or a variable with alternatives: {ifName|ifDescr|ifIndex}. */
struct segment {
	char *literal;
	struct ref *alts;
	size_t nalts;
};

struct template {
	struct segment *seg;
	size_t nseg;
};

enum cond_op {
	COND_EQUALS,
	COND_PREFIX,
	COND_REGEX,
};

struct cond {
	struct ref ref;
	enum cond_op op;
	char *value;
	regex_t re;
};

struct def {
	char *name;
	bool enabled;
	bool builtin;
	bool has_trap;
	struct trap_oid trap;
	bool trap_prefix; /* "OID.*" */
	struct cond *conds;
	size_t nconds;
	char *check;
	struct template item, summary;
	bool has_item;
	enum check_state state;
	bool has_state;
	char *clears;	    /* the name of the mapping this one clears */
	char *clears_where; /* "file:line:column: mappings[2].clears" */
	char *where;	    /* where the mapping was defined */
};

struct trapmap {
	struct def *defs;
	size_t ndefs;
	struct def fallback;
	bool has_fallback;
};

/* A varbind name given in the `names:` section of the file being loaded. */
struct alias {
	const char *name;
	struct trap_oid oid;
};

/* Where errors go while one mapping is compiled. */
struct ctx {
	struct cfg *cfg;
	const char *builtin; /* the built-in's name, or NULL for a file */
	struct alias *aliases;
	size_t naliases;
	trapmap_resolve_fn resolve;
	void *arg;
	bool failed;
};

/* A built-in mapping, in the form a file would write it. */
struct builtin {
	const char *name;
	const char *trap;
	const char *check;
	const char *item;
	const char *state;
	const char *summary;
	const char *clears;
};

/*
 * The built-in mappings.  One line per mapping's purpose; their names are
 * what a file uses to replace or switch them off.
 */
static const struct builtin builtins[] = {
	{ .name = "link-down",
	  .trap = "linkDown",
	  .check = "link",
	  .item = "{ifName|ifDescr|ifIndex|ifOperStatus.index}",
	  .state = "critical",
	  .summary = "{ifName|ifDescr|ifIndex|ifOperStatus.index} on {device} is down"
		     " (ifIndex {ifIndex|ifOperStatus.index}, adminStatus {ifAdminStatus},"
		     " operStatus {ifOperStatus})" },
	{ .name = "link-up",
	  .trap = "linkUp",
	  .clears = "link-down",
	  .summary = "{ifName|ifDescr|ifIndex|ifOperStatus.index} on {device} is up"
		     " (ifIndex {ifIndex|ifOperStatus.index}, adminStatus {ifAdminStatus},"
		     " operStatus {ifOperStatus})" },
	{ .name = "cold-start",
	  .trap = "coldStart",
	  .check = "restart",
	  .item = "device",
	  .state = "warning",
	  .summary = "{device} restarted (coldStart: reinitialised, its configuration may have changed)" },
	{ .name = "warm-start",
	  .trap = "warmStart",
	  .check = "restart",
	  .item = "device",
	  .state = "warning",
	  .summary = "{device} restarted (warmStart: reinitialised, configuration unchanged)" },
	{ .name = "authentication-failure",
	  .trap = "authenticationFailure",
	  .check = "snmp-auth",
	  .item = "authenticationFailure",
	  .state = "warning",
	  .summary = "{device} received an SNMP request with a wrong community or key" },
	/*
	 * One ticket per device and trap OID: a trap nobody wrote a mapping
	 * for is often the only sign of a real fault (a fan, a power supply),
	 * so a technician must see it once; repeats are occurrences of the
	 * same ticket, not new tickets, and a mapping written later takes over.
	 */
	{ .name = "fallback",
	  .check = "trap",
	  .item = "{trap}",
	  .state = "warning",
	  .summary = "{device} sent {trap}, which no mapping describes: {varbinds}" },
};

static void ctx_error(struct ctx *c, const struct cfg_node *node,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void ctx_error(struct ctx *c, const struct cfg_node *node,
		      const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->failed = true;
	if (node != NULL)
		cfg_error(c->cfg, node, "%s", text);
	else
		cfg_error_text(c->cfg, "built-in mapping %s: %s", c->builtin,
			       text);
}

static void template_free(struct template *t)
{
	for (size_t i = 0; i < t->nseg; i++) {
		free(t->seg[i].literal);
		free(t->seg[i].alts);
	}
	free(t->seg);
	memset(t, 0, sizeof(*t));
}

static void def_free(struct def *d)
{
	free(d->name);
	for (size_t i = 0; i < d->nconds; i++) {
		free(d->conds[i].value);
		if (d->conds[i].op == COND_REGEX)
			regfree(&d->conds[i].re);
	}
	free(d->conds);
	free(d->check);
	template_free(&d->item);
	template_free(&d->summary);
	free(d->clears);
	free(d->clears_where);
	free(d->where);
	memset(d, 0, sizeof(*d));
}

struct trapmap *trapmap_new(void)
{
	return xcalloc(1, sizeof(struct trapmap));
}

void trapmap_free(struct trapmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->ndefs; i++)
		def_free(&m->defs[i]);
	free(m->defs);
	def_free(&m->fallback);
	free(m);
}

size_t trapmap_count(const struct trapmap *m)
{
	return m->ndefs;
}

/*
 * Resolve an object name: a numeric OID, an alias of the file, a built-in
 * name, or whatever the resolver (the MIB parser) knows.  0 or -ENOENT.
 */
static int resolve_oid(const struct ctx *c, const char *name,
		       struct trap_oid *ret)
{
	const struct trapname *n;

	if (trap_oid_parse(name, ret) == 0)
		return 0;
	for (size_t i = 0; i < c->naliases; i++) {
		if (strcmp(c->aliases[i].name, name) == 0) {
			*ret = c->aliases[i].oid;
			return 0;
		}
	}
	n = trapnames_by_name(name);
	if (n != NULL) {
		memcpy(ret->sub, n->sub, n->len * sizeof(n->sub[0]));
		ret->len = n->len;
		return 0;
	}
	if (c->resolve != NULL && c->resolve(c->arg, name, ret) == 0)
		return 0;
	return -ENOENT;
}

/* A template variable or condition name into a ref.  0 or -ENOENT. */
static int resolve_ref(const struct ctx *c, const char *name, struct ref *ret)
{
	static const char index_suffix[] = ".index";
	size_t len = strlen(name), slen = sizeof(index_suffix) - 1;
	char base[256];

	for (size_t i = 0; i < ARRAY_SIZE(specials); i++) {
		if (strcmp(specials[i].name, name) == 0) {
			ret->kind = specials[i].kind;
			ret->oid.len = 0;
			return 0;
		}
	}
	if (len > slen && strcmp(name + len - slen, index_suffix) == 0 &&
	    len - slen < sizeof(base)) {
		memcpy(base, name, len - slen);
		base[len - slen] = '\0';
		ret->kind = REF_INDEX;
		return resolve_oid(c, base, &ret->oid);
	}
	ret->kind = REF_VARBIND;
	return resolve_oid(c, name, &ret->oid);
}

static bool name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
	       ch == '.' || ch == ':';
}

static void add_segment(struct template *t, char *literal, struct ref *alts,
			size_t nalts)
{
	t->seg = xreallocarray(t->seg, t->nseg + 1, sizeof(*t->seg));
	t->seg[t->nseg++] = (struct segment){ .literal = literal,
					      .alts = alts,
					      .nalts = nalts };
}

/* The variable between braces at text[start..end), "a|b|c", into t. */
static int compile_variable(struct ctx *c, const struct cfg_node *node,
			    const char *text, size_t start, size_t end,
			    struct template *t)
{
	struct ref *alts = xcalloc(ALTERNATIVES_MAX, sizeof(*alts));
	size_t nalts = 0, i = start;

	while (i <= end) {
		size_t j = i;
		char name[256];

		while (j < end && text[j] != '|')
			j++;
		while (i < j && text[i] == ' ')
			i++;
		size_t k = j;
		while (k > i && text[k - 1] == ' ')
			k--;
		if (k == i || k - i >= sizeof(name)) {
			ctx_error(c, node, "empty or overlong name in {...} at character %zu",
				  i + 1);
			goto fail;
		}
		for (size_t p = i; p < k; p++) {
			if (!name_char(text[p])) {
				ctx_error(c, node,
					  "character '%c' at %zu is not allowed in a name",
					  text[p], p + 1);
				goto fail;
			}
		}
		if (nalts == ALTERNATIVES_MAX) {
			ctx_error(c, node, "more than %d alternatives in {...} at character %zu",
				  ALTERNATIVES_MAX, start);
			goto fail;
		}
		memcpy(name, text + i, k - i);
		name[k - i] = '\0';
		if (resolve_ref(c, name, &alts[nalts]) < 0) {
			ctx_error(c, node,
				  "unknown name '%s' at character %zu (not a number, not under names:, not built in, and no loaded MIB defines it)",
				  name, i + 1);
			goto fail;
		}
		nalts++;
		i = j + 1;
	}
	add_segment(t, NULL, alts, nalts);
	return 0;
fail:
	free(alts);
	return -EINVAL;
}

/*
 * Compile template text: literal text with {name|name...} variables; {{
 * and }} are literal braces.  Errors name the character position.
 */
static int compile_template(struct ctx *c, const struct cfg_node *node,
			    const char *text, struct template *ret)
{
	struct template t = { 0 };
	size_t n = strlen(text), lit_len = 0;
	char *lit = xcalloc(1, n + 1);

	if (n > TEMPLATE_MAX) {
		ctx_error(c, node, "template longer than %d characters", TEMPLATE_MAX);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if ((text[i] == '{' || text[i] == '}') && text[i + 1] == text[i]) {
			lit[lit_len++] = text[i++];
			continue;
		}
		if (text[i] == '}') {
			ctx_error(c, node, "unmatched '}' at character %zu (write }} for a brace)",
				  i + 1);
			goto fail;
		}
		if (text[i] != '{') {
			lit[lit_len++] = text[i];
			continue;
		}
		const char *close = strchr(text + i + 1, '}');
		const char *open = strchr(text + i + 1, '{');
		if (close == NULL || (open != NULL && open < close)) {
			ctx_error(c, node, "unclosed '{' at character %zu", i + 1);
			goto fail;
		}
		if (lit_len > 0) {
			add_segment(&t, xstrdup(lit), NULL, 0);
			memset(lit, 0, lit_len);
			lit_len = 0;
		}
		if (compile_variable(c, node, text, i + 1,
				     (size_t)(close - text), &t) < 0)
			goto fail;
		i = (size_t)(close - text);
	}
	if (lit_len > 0)
		add_segment(&t, xstrdup(lit), NULL, 0);
	free(lit);
	template_free(ret);
	*ret = t;
	return 0;
fail:
	free(lit);
	template_free(&t);
	return -EINVAL;
}

static bool valid_check_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > INGEST_CHECK_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

static void compile_trap(struct ctx *c, const struct cfg_node *node,
			 const char *text, struct def *d)
{
	size_t n = strlen(text);
	char *base = xstrdup(text);

	if (n > 2 && strcmp(text + n - 2, ".*") == 0) {
		base[n - 2] = '\0';
		d->trap_prefix = true;
	}
	if (resolve_oid(c, base, &d->trap) < 0)
		ctx_error(c, node,
			  "unknown trap '%s' (not a number, not under names:, not built in, and no loaded MIB defines it)",
			  base);
	else
		d->has_trap = true;
	free(base);
}

static void compile_state(struct ctx *c, const struct cfg_node *node,
			  const char *text, struct def *d)
{
	if (check_state_parse(text, &d->state) < 0)
		ctx_error(c, node,
			  "'%s' is not one of ok, warning, critical, unknown",
			  text);
	else
		d->has_state = true;
}

static void compile_check(struct ctx *c, const struct cfg_node *node,
			  const char *text, struct def *d)
{
	if (!valid_check_name(text)) {
		ctx_error(c, node,
			  "'%s' is not a check name (a-z, 0-9, '_', '-', '.', at most %d)",
			  text, INGEST_CHECK_MAX);
		return;
	}
	free(d->check);
	d->check = xstrdup(text);
}

/*
 * What regcomp() would take but a listener must not run: back-references
 * (\1 to \9, a GNU extension in extended expressions, which make matching
 * exponential) and overlong expressions.  True after recording an error.
 */
static bool regex_refused(struct ctx *c, const struct cfg_node *node,
			  const char *re)
{
	size_t n = strlen(re);

	if (n > REGEX_MAX) {
		ctx_error(c, node, "regular expression longer than %d characters",
			  REGEX_MAX);
		return true;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		if (re[i] != '\\')
			continue;
		if (re[i + 1] >= '1' && re[i + 1] <= '9') {
			ctx_error(c, node,
				  "regular expression '%s': back-reference \\%c at character %zu is not allowed (it can make matching take exponential time)",
				  re, re[i + 1], i + 1);
			return true;
		}
		i++; /* an escaped character, "\\\\" included */
	}
	return false;
}

/* One condition: `name: value` (equals) or `name: {equals|prefix|regex: v}`. */
static void compile_cond(struct ctx *c, const char *name,
			 const struct cfg_node *key_node,
			 const struct cfg_node *value, struct def *d)
{
	static const char *const ops[] = { "equals", "prefix", "regex", NULL };
	struct cond cond = { .op = COND_EQUALS };
	const struct cfg_node *vnode = value;
	int op = -1, r;

	if (resolve_ref(c, name, &cond.ref) < 0) {
		ctx_error(c, key_node,
			  "unknown name '%s' (not a number, not under names:, not built in, and no loaded MIB defines it)",
			  name);
		return;
	}
	if (value->type == CFG_MAP) {
		if (value->npairs != 1) {
			ctx_error(c, value, "a condition is one of equals, prefix, regex");
			return;
		}
		for (int i = 0; ops[i]; i++)
			if (strcmp(value->pairs[0].key, ops[i]) == 0)
				op = i;
		value->pairs[0].used = true;
		if (op < 0) {
			ctx_error(c, value, "'%s' is not one of equals, prefix, regex",
				  value->pairs[0].key);
			return;
		}
		cond.op = (enum cond_op)op;
		vnode = value->pairs[0].value;
	}
	if (vnode->type != CFG_SCALAR) {
		ctx_error(c, vnode, "expected a single value");
		return;
	}
	if (cond.op == COND_REGEX && regex_refused(c, vnode, vnode->value))
		return;
	cond.value = xstrdup(vnode->value);
	if (cond.op == COND_REGEX) {
		r = regcomp(&cond.re, cond.value, REG_EXTENDED | REG_NOSUB);
		if (r != 0) {
			char why[256];

			regerror(r, &cond.re, why, sizeof(why));
			ctx_error(c, vnode, "bad regular expression '%s': %s",
				  cond.value, why);
			free(cond.value);
			return;
		}
	}
	d->conds = xreallocarray(d->conds, d->nconds + 1, sizeof(*d->conds));
	d->conds[d->nconds++] = cond;
}

static void compile_match(struct ctx *c, const struct cfg_node *node,
			  struct def *d)
{
	if (node == NULL || node->type == CFG_NULL)
		return;
	if (node->type != CFG_MAP) {
		ctx_error(c, node, "expected a mapping of name: condition");
		return;
	}
	for (size_t i = 0; i < node->npairs; i++) {
		node->pairs[i].used = true;
		compile_cond(c, node->pairs[i].key, node,
			     node->pairs[i].value, d);
	}
}

static char *where_text(const struct cfg_node *node)
{
	return xasprintf("%s:%d:%d: %s", node->file, node->line, node->column,
			 node->path);
}

/* A string key of a mapping node: 1 and *ret, 0 absent, -1 error. */
static int get_text(struct ctx *c, const struct cfg_node *map, const char *key,
		    char **ret, const struct cfg_node **ret_node)
{
	int r = cfg_get_string(c->cfg, map, key, ret);

	if (r < 0)
		c->failed = true;
	if (r > 0 && ret_node != NULL)
		*ret_node = cfg_get(c->cfg, map, key);
	return r;
}

/* Compile one entry of mappings: into d; false when it has errors. */
static bool compile_file_def(struct ctx *c, const struct cfg_node *node,
			     struct def *d)
{
	const struct cfg_node *n = NULL;
	char *text = NULL;
	bool enabled = true;

	d->enabled = true;
	d->where = where_text(node);
	if (node->type != CFG_MAP) {
		ctx_error(c, node, "expected a mapping with name, trap, check, item, state, summary");
		return false;
	}
	if (get_text(c, node, "name", &d->name, &n) <= 0 ||
	    strlen(d->name) == 0 || strlen(d->name) > NAME_MAX_LEN) {
		ctx_error(c, n ? n : node, "a mapping needs a name of 1 to %d characters",
			  NAME_MAX_LEN);
		free(d->name);
		d->name = NULL;
		return false;
	}
	if (cfg_get_bool(c->cfg, node, "enabled", &enabled) < 0)
		c->failed = true;
	d->enabled = enabled;
	if (get_text(c, node, "trap", &text, &n) > 0)
		compile_trap(c, n, text, d);
	free(text);
	text = NULL;
	compile_match(c, cfg_get(c->cfg, node, "match"), d);
	if (get_text(c, node, "check", &text, &n) > 0)
		compile_check(c, n, text, d);
	free(text);
	text = NULL;
	if (get_text(c, node, "item", &text, &n) > 0 &&
	    compile_template(c, n, text, &d->item) == 0)
		d->has_item = true;
	free(text);
	text = NULL;
	if (get_text(c, node, "state", &text, &n) > 0)
		compile_state(c, n, text, d);
	free(text);
	text = NULL;
	if (get_text(c, node, "summary", &text, &n) > 0)
		compile_template(c, n, text, &d->summary);
	free(text);
	if (get_text(c, node, "clears", &d->clears, &n) > 0)
		d->clears_where = where_text(n);
	return !c->failed;
}

/* Compile a built-in from its table entry. */
static bool compile_builtin(struct ctx *c, const struct builtin *b,
			    struct def *d)
{
	d->name = xstrdup(b->name);
	d->enabled = true;
	d->builtin = true;
	d->where = xasprintf("built-in mapping %s", b->name);
	if (b->trap)
		compile_trap(c, NULL, b->trap, d);
	if (b->check)
		compile_check(c, NULL, b->check, d);
	if (b->item && compile_template(c, NULL, b->item, &d->item) == 0)
		d->has_item = true;
	if (b->state)
		compile_state(c, NULL, b->state, d);
	if (b->summary)
		compile_template(c, NULL, b->summary, &d->summary);
	if (b->clears) {
		d->clears = xstrdup(b->clears);
		d->clears_where = xasprintf("built-in mapping %s: clears", b->name);
	}
	return !c->failed;
}

static const struct def *find_def(const struct trapmap *m, const char *name)
{
	for (size_t i = 0; i < m->ndefs; i++)
		if (strcmp(m->defs[i].name, name) == 0)
			return &m->defs[i];
	if (m->has_fallback && strcmp(m->fallback.name, name) == 0)
		return &m->fallback;
	return NULL;
}

/*
 * The fallback is kept apart (it has no trap OID); every other mapping
 * needs a trap and, unless it clears another, check, item and state.
 */
static void add_def(struct trapmap *m, struct ctx *c,
		    const struct cfg_node *node, struct def *d)
{
	const struct def *other = find_def(m, d->name);
	bool is_fallback = strcmp(d->name, "fallback") == 0;

	if (other != NULL) {
		ctx_error(c, node, "mapping '%s' is already defined (%s)",
			  d->name, other->where);
		def_free(d);
		return;
	}
	if (d->enabled && !is_fallback && !d->has_trap)
		ctx_error(c, node, "mapping '%s' needs trap:", d->name);
	if (d->enabled && is_fallback && d->has_trap)
		ctx_error(c, node, "the fallback takes every unmatched trap: it has no trap:");
	if (d->enabled && d->clears == NULL &&
	    (d->check == NULL || !d->has_item || !d->has_state))
		ctx_error(c, node, "mapping '%s' needs check, item and state (or clears:)",
			  d->name);
	if (d->enabled && d->clears != NULL && d->has_state &&
	    d->state != CHECK_OK)
		ctx_error(c, node, "mapping '%s' clears '%s': its state is ok",
			  d->name, d->clears);
	if (c->failed) {
		def_free(d);
		return;
	}
	if (is_fallback) {
		m->fallback = *d;
		m->has_fallback = true;
		return;
	}
	m->defs = xreallocarray(m->defs, m->ndefs + 1, sizeof(*m->defs));
	m->defs[m->ndefs++] = *d;
}

/* The names: section: aliases for objects no MIB file describes. */
static void parse_aliases(struct ctx *c, const struct cfg_node *node)
{
	if (node == NULL || node->type == CFG_NULL)
		return;
	if (node->type != CFG_MAP) {
		ctx_error(c, node, "expected a mapping of name: OID");
		return;
	}
	c->aliases = xcalloc(node->npairs, sizeof(*c->aliases));
	for (size_t i = 0; i < node->npairs; i++) {
		const struct cfg_node *v = node->pairs[i].value;
		struct alias *a = &c->aliases[c->naliases];

		node->pairs[i].used = true;
		a->name = node->pairs[i].key;
		if (v->type != CFG_SCALAR || trap_oid_parse(v->value, &a->oid) < 0) {
			ctx_error(c, v, "expected a numeric OID such as 1.3.6.1.4.1.9.9.13");
			continue;
		}
		c->naliases++;
	}
}

void trapmap_add_file(struct trapmap *m, struct cfg *file_cfg,
		      trapmap_resolve_fn resolve, void *arg)
{
	struct ctx c = { .cfg = file_cfg, .resolve = resolve, .arg = arg };
	const struct cfg_node *list;

	parse_aliases(&c, cfg_get(file_cfg, file_cfg->root, "names"));
	list = cfg_get(file_cfg, file_cfg->root, "mappings");
	if (list != NULL && list->type != CFG_NULL && list->type != CFG_SEQ) {
		ctx_error(&c, list, "expected a list of mappings");
		list = NULL;
	}
	for (size_t i = 0; list != NULL && i < list->nitems; i++) {
		struct def d = { 0 };

		if (m->ndefs >= MAPPINGS_MAX) {
			ctx_error(&c, list->items[i], "more than %d mappings",
				  MAPPINGS_MAX);
			break;
		}
		c.failed = false;
		if (!compile_file_def(&c, list->items[i], &d)) {
			def_free(&d);
			continue;
		}
		add_def(m, &c, list->items[i], &d);
	}
	free(c.aliases);
}

static int yaml_file(const struct dirent *de)
{
	size_t len = strlen(de->d_name);

	return de->d_name[0] != '.' &&
	       ((len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0) ||
		(len > 4 && strcmp(de->d_name + len - 4, ".yml") == 0));
}

void trapmap_load_dir(struct trapmap *m, const char *dir,
		      trapmap_resolve_fn resolve, void *arg,
		      struct cfg *errors)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, yaml_file, alphasort);

	if (n < 0 && errno != ENOENT)
		cfg_error_text(errors, "%s: cannot read the mappings directory: %s",
			       dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]->d_name);
		struct cfg *fc;

		if (cfg_load(path, NULL, &fc) == 0) {
			if (fc->nerrors == 0)
				trapmap_add_file(m, fc, resolve, arg);
			cfg_finish(fc);
			for (size_t e = 0; e < fc->nerrors; e++)
				cfg_error_text(errors, "%s", fc->errors[e]);
			cfg_free(fc);
		}
		free(path);
		free(names[i]);
	}
	free(names);
}

/* Copy what a clear inherits: the cleared mapping's check and item. */
static int inherit_cleared(struct def *d, const struct def *target)
{
	if (target->check == NULL || !target->has_item)
		return -EINVAL;
	if (d->check == NULL)
		d->check = xstrdup(target->check);
	if (!d->has_item) {
		struct template t = { 0 };

		for (size_t i = 0; i < target->item.nseg; i++) {
			const struct segment *s = &target->item.seg[i];
			struct ref *alts = NULL;

			if (s->nalts > 0) {
				alts = xcalloc(s->nalts, sizeof(*alts));
				memcpy(alts, s->alts, s->nalts * sizeof(*alts));
			}
			add_segment(&t, s->literal ? xstrdup(s->literal) : NULL,
				    alts, s->nalts);
		}
		d->item = t;
		d->has_item = true;
	}
	d->state = CHECK_OK;
	d->has_state = true;
	return 0;
}

/*
 * A clear takes the check and item of the mapping it clears.  One whose
 * mapping is switched off is switched off with it (its trap then goes to
 * the fallback, as any trap of a switched-off mapping does).
 */
static void resolve_clears(struct trapmap *m, struct def *d,
			   struct cfg *errors)
{
	const struct def *target;

	if (d->clears == NULL || !d->enabled)
		return;
	target = find_def(m, d->clears);
	if (target != NULL && target != d && !target->enabled) {
		d->enabled = false;
	} else if (target == NULL || target == d) {
		cfg_error_text(errors, "%s: no mapping '%s' to clear",
			       d->clears_where, d->clears);
		d->enabled = false;
	} else if (inherit_cleared(d, target) < 0) {
		cfg_error_text(errors, "%s: mapping '%s' has no check and item to clear",
			       d->clears_where, d->clears);
		d->enabled = false;
	}
}

void trapmap_finish(struct trapmap *m, struct cfg *errors)
{
	for (size_t i = 0; i < ARRAY_SIZE(builtins); i++) {
		struct ctx c = { .cfg = errors, .builtin = builtins[i].name };
		struct def d = { 0 };

		if (find_def(m, builtins[i].name) != NULL)
			continue; /* replaced or switched off by a file */
		if (!compile_builtin(&c, &builtins[i], &d)) {
			def_free(&d);
			continue;
		}
		add_def(m, &c, NULL, &d);
	}
	for (size_t i = 0; i < m->ndefs; i++)
		resolve_clears(m, &m->defs[i], errors);
	if (m->has_fallback && !m->fallback.enabled)
		m->has_fallback = false;
}

/* --- matching and rendering ---------------------------------------------- */

/* A bounded output buffer; what does not fit is cut at a character. */
struct out {
	char *buf;
	size_t len, size;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	size_t room = o->size - 1 - o->len;

	if (n > room) {
		n = room;
		/* Do not cut a UTF-8 sequence in half. */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* The text of a varbind as a template shows it: its label, else its text. */
static const char *vb_value(const struct trap_varbind *v)
{
	return v->label ? v->label : v->text;
}

static void out_oid(struct out *o, const uint32_t *sub, size_t len)
{
	char buf[TRAP_OID_TEXT_MAX];

	trap_oid_format(sub, len, buf, sizeof(buf));
	out_str(o, buf);
}

static void out_varbinds(struct out *o, const struct trap_msg *msg)
{
	if (msg->nvb == 0)
		out_str(o, "no varbinds");
	for (size_t i = 0; i < msg->nvb; i++) {
		const struct trap_varbind *v = &msg->vb[i];

		if (i > 0)
			out_str(o, ", ");
		if (v->name != NULL) {
			out_str(o, v->name);
			if (v->index[0] != '\0') {
				out_str(o, ".");
				out_str(o, v->index);
			}
		} else {
			out_oid(o, v->oid.sub, v->oid.len);
		}
		out_str(o, "=");
		out_str(o, vb_value(v));
	}
}

/*
 * Render ref into o.  Returns false when the trap has nothing for it (a
 * missing varbind, no agent-addr in a v2c trap), so that the next
 * alternative is tried.
 */
static bool render_ref(struct out *o, const struct ref *r,
		       const struct trap_msg *msg, const char *device)
{
	static const char hex[] = "0123456789abcdef";
	const struct trap_varbind *v;

	switch (r->kind) {
	case REF_VARBIND:
	case REF_INDEX:
		v = trapmsg_find(msg, r->oid.sub, r->oid.len);
		if (v == NULL)
			return false;
		if (r->kind == REF_VARBIND) {
			out_str(o, vb_value(v));
		} else {
			if (v->oid.len == r->oid.len)
				return false;
			out_oid(o, v->oid.sub + r->oid.len,
				v->oid.len - r->oid.len);
		}
		return true;
	case REF_DEVICE:
		out_str(o, device);
		return true;
	case REF_SOURCE:
		out_str(o, msg->source_text);
		return true;
	case REF_AGENT_ADDR:
		if (!msg->has_agent_addr)
			return false;
		out_str(o, msg->agent_addr_text);
		return true;
	case REF_TRAP:
		out_str(o, msg->trap_name ? msg->trap_name : "");
		return true;
	case REF_TRAP_OID:
		out_oid(o, msg->trap_oid.sub, msg->trap_oid.len);
		return true;
	case REF_VERSION:
		out_str(o, trap_version_name(msg->version));
		return true;
	case REF_USER:
		if (msg->version != TRAP_V3)
			return false;
		out_str(o, msg->user);
		return true;
	case REF_ENGINE_ID:
		if (msg->engine_id_len == 0)
			return false;
		for (size_t i = 0; i < msg->engine_id_len; i++) {
			char b[2] = { hex[msg->engine_id[i] >> 4],
				      hex[msg->engine_id[i] & 0xf] };

			out_put(o, b, 2);
		}
		return true;
	case REF_VARBINDS:
		out_varbinds(o, msg);
		return true;
	}
	return false;
}

static void render(const struct template *t, const struct trap_msg *msg,
		   const char *device, char *buf, size_t size)
{
	struct out o = { .buf = buf, .size = size };

	buf[0] = '\0';
	for (size_t i = 0; i < t->nseg; i++) {
		const struct segment *s = &t->seg[i];

		if (s->literal) {
			out_str(&o, s->literal);
			continue;
		}
		for (size_t a = 0; a < s->nalts; a++)
			if (render_ref(&o, &s->alts[a], msg, device))
				break;
	}
}

/* regexec() on the first REGEX_TEXT_MAX bytes of text, cut at a character. */
static bool regex_holds(const regex_t *re, const char *text)
{
	char buf[REGEX_TEXT_MAX + 1];
	size_t n = strlen(text);

	if (n <= REGEX_TEXT_MAX)
		return regexec(re, text, 0, NULL, 0) == 0;
	n = REGEX_TEXT_MAX;
	while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, text, n);
	buf[n] = '\0';
	return regexec(re, buf, 0, NULL, 0) == 0;
}

static bool cond_text_holds(const struct cond *c, const char *text)
{
	switch (c->op) {
	case COND_EQUALS:
		return strcmp(text, c->value) == 0;
	case COND_PREFIX:
		return strncmp(text, c->value, strlen(c->value)) == 0;
	case COND_REGEX:
		return regex_holds(&c->re, text);
	}
	return false;
}

static bool cond_holds(const struct cond *c, const struct trap_msg *msg,
		       const char *device)
{
	char buf[INGEST_SUMMARY_MAX + 1];
	const struct trap_varbind *v;
	struct out o = { .buf = buf, .size = sizeof(buf) };

	buf[0] = '\0';
	if (c->ref.kind == REF_VARBIND) {
		/* Any varbind under the name may satisfy it, by text or label. */
		for (size_t i = 0; i < msg->nvb; i++) {
			v = &msg->vb[i];
			if (!trap_oid_has_prefix(v->oid.sub, v->oid.len,
						 c->ref.oid.sub, c->ref.oid.len))
				continue;
			if (cond_text_holds(c, v->text) ||
			    (v->label && cond_text_holds(c, v->label)))
				return true;
		}
		return false;
	}
	if (!render_ref(&o, &c->ref, msg, device))
		return false;
	return cond_text_holds(c, buf);
}

static bool def_matches(const struct def *d, const struct trap_msg *msg,
			const char *device)
{
	if (!d->enabled || !d->has_trap)
		return false;
	if (d->trap_prefix ? !trap_oid_has_prefix(msg->trap_oid.sub,
						  msg->trap_oid.len,
						  d->trap.sub, d->trap.len)
			   : !trap_oid_equal(msg->trap_oid.sub, msg->trap_oid.len,
					     d->trap.sub, d->trap.len))
		return false;
	for (size_t i = 0; i < d->nconds; i++)
		if (!cond_holds(&d->conds[i], msg, device))
			return false;
	return true;
}

static void produce(const struct def *d, const struct trap_msg *msg,
		    const char *device, struct trapmap_result *ret)
{
	ret->mapping = d->name;
	strlcpy_safe(ret->check, d->check, sizeof(ret->check));
	render(&d->item, msg, device, ret->item, sizeof(ret->item));
	if (ret->item[0] == '\0')
		strlcpy_safe(ret->item, "-", sizeof(ret->item));
	ret->state = d->state;
	render(&d->summary, msg, device, ret->summary, sizeof(ret->summary));
	if (ret->summary[0] == '\0')
		snprintf(ret->summary, sizeof(ret->summary), "%s from %s",
			 msg->trap_name ? msg->trap_name : "trap", device);
}

int trapmap_apply(const struct trapmap *m, const struct trap_msg *msg,
		  const char *device, struct trapmap_result *ret)
{
	for (size_t i = 0; i < m->ndefs; i++) {
		if (def_matches(&m->defs[i], msg, device)) {
			ret->fallback = false;
			ret->clear = m->defs[i].clears != NULL;
			ret->next = i + 1;
			produce(&m->defs[i], msg, device, ret);
			return 1;
		}
	}
	if (!m->has_fallback)
		return -ENOENT;
	ret->fallback = true;
	ret->clear = false;
	ret->next = m->ndefs;
	produce(&m->fallback, msg, device, ret);
	return 0;
}

int trapmap_next_clear(const struct trapmap *m, const struct trap_msg *msg,
		       const char *device, struct trapmap_result *ret)
{
	if (!ret->clear)
		return 0;
	for (size_t i = ret->next; i < m->ndefs; i++) {
		if (m->defs[i].clears != NULL &&
		    def_matches(&m->defs[i], msg, device)) {
			ret->next = i + 1;
			produce(&m->defs[i], msg, device, ret);
			return 1;
		}
	}
	ret->next = m->ndefs;
	return 0;
}
