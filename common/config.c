#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

/* Deeper documents are rejected: recursion below is bounded by this. */
#define CFG_MAX_DEPTH 64

struct cfg_parser {
	struct cfg *cfg;
	yaml_parser_t yaml;
	const char *file;
	const char *text; /* the input, for cfg_load_string(); else NULL */
	bool failed;
};

static struct cfg_node *node_new(enum cfg_type type, const char *file,
				 const yaml_mark_t *mark, const char *path)
{
	struct cfg_node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->type = type;
	n->file = file;
	n->line = mark ? (int)mark->line + 1 : 0;
	n->column = mark ? (int)mark->column + 1 : 0;
	n->path = strdup(path);
	if (n->path == NULL) {
		free(n);
		return NULL;
	}
	return n;
}

static void node_free(struct cfg_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->npairs; i++) {
		free(n->pairs[i].key);
		node_free(n->pairs[i].value);
	}
	for (size_t i = 0; i < n->nitems; i++)
		node_free(n->items[i]);
	free(n->pairs);
	free(n->items);
	free(n->value);
	free(n->path);
	free(n);
}

static void cfg_add_error(struct cfg *cfg, char *msg)
{
	char **grown;

	if (msg == NULL)
		return;
	grown = realloc(cfg->errors, (cfg->nerrors + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(msg);
		return;
	}
	cfg->errors = grown;
	cfg->errors[cfg->nerrors++] = msg;
}

static void cfg_verror_at(struct cfg *cfg, const char *file, int line,
			  int column, const char *path, const char *fmt,
			  va_list ap)
{
	char text[1024];
	char *msg;

	vsnprintf(text, sizeof(text), fmt, ap);
	if (path != NULL && *path != '\0')
		msg = xasprintf("%s:%d:%d: %s: %s", file, line, column, path,
				text);
	else
		msg = xasprintf("%s:%d:%d: %s", file, line, column, text);
	cfg_add_error(cfg, msg);
}

static void cfg_error_at(struct cfg *cfg, const char *file, int line,
			 int column, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void cfg_error_at(struct cfg *cfg, const char *file, int line,
			 int column, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verror_at(cfg, file, line, column, path, fmt, ap);
	va_end(ap);
}

void cfg_error(struct cfg *cfg, const struct cfg_node *node, const char *fmt,
	       ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verror_at(cfg, node->file, node->line, node->column, node->path,
		      fmt, ap);
	va_end(ap);
}

void cfg_error_text(struct cfg *cfg, const char *fmt, ...)
{
	char text[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	cfg_add_error(cfg, xstrdup(text));
}

static bool scalar_is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/*
 * Line and column (1-based, the column in characters as libyaml counts
 * them) of the byte at offset: libyaml's reader errors (bytes that are
 * not UTF-8) carry only an offset, no mark.  The file is read again for
 * it; when it cannot be, *ret_line and *ret_column stay as they are.
 */
static void offset_position(const struct cfg_parser *p, size_t offset,
			    int *ret_line, int *ret_column)
{
	FILE *fp = NULL;
	int line = 1, column = 1;

	if (p->text == NULL && (fp = fopen(p->file, "re")) == NULL)
		return;
	for (size_t i = 0; i < offset; i++) {
		int c = fp ? getc(fp) : (unsigned char)p->text[i];

		if (c == EOF || c == '\0')
			break;
		if (c == '\n') {
			line++;
			column = 1;
		} else if ((c & 0xc0) != 0x80) {
			column++;
		}
	}
	if (fp != NULL)
		fclose(fp);
	*ret_line = line;
	*ret_column = column;
}

static int parse_next(struct cfg_parser *p, yaml_event_t *ev)
{
	int line, column;

	if (yaml_parser_parse(&p->yaml, ev))
		return 0;
	line = (int)p->yaml.problem_mark.line + 1;
	column = (int)p->yaml.problem_mark.column + 1;
	if (p->yaml.error == YAML_READER_ERROR)
		offset_position(p, p->yaml.problem_offset, &line, &column);
	cfg_error_at(p->cfg, p->file, line, column, NULL,
		     "YAML syntax error: %s%s%s",
		     p->yaml.problem ? p->yaml.problem : "unknown problem",
		     p->yaml.context ? " " : "",
		     p->yaml.context ? p->yaml.context : "");
	p->failed = true;
	return -EINVAL;
}

static struct cfg_node *parse_node(struct cfg_parser *p, yaml_event_t *ev,
				   const char *path, int depth);

/*
 * The keys of a mapping being parsed, so that a duplicate is found
 * without comparing each key with every earlier one (an MSP's inventory
 * has thousands of hosts): open addressing over the pairs' indices, with
 * FNV-1a (the configuration is the administrator's, not a peer's).
 */
struct key_index {
	size_t *slots; /* index of a pair + 1; 0: free */
	size_t nslots; /* a power of two, more than twice the keys */
	size_t n;
};

static uint64_t key_hash(const char *key)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *c = (const unsigned char *)key; *c; c++)
		h = (h ^ *c) * 1099511628211ull;
	return h;
}

/* The slot of key in map's index: the pair's, or the free one it would take. */
static size_t *key_slot(const struct key_index *ki, const struct cfg_node *map,
			const char *key)
{
	size_t mask = ki->nslots - 1, i = (size_t)key_hash(key) & mask;

	while (ki->slots[i] != 0 &&
	       strcmp(map->pairs[ki->slots[i] - 1].key, key) != 0)
		i = (i + 1) & mask;
	return &ki->slots[i];
}

/* Index map's pair i, whose key no earlier pair has. */
static void key_index_add(struct key_index *ki, const struct cfg_node *map,
			  size_t i)
{
	if (2 * (ki->n + 1) >= ki->nslots) {
		struct key_index grown = { .nslots = ki->nslots ? 2 * ki->nslots : 16 };

		grown.slots = xcalloc(grown.nslots, sizeof(*grown.slots));
		for (size_t k = 0; k < ki->nslots; k++)
			if (ki->slots[k] != 0)
				*key_slot(&grown, map, map->pairs[ki->slots[k] - 1].key) =
					ki->slots[k];
		grown.n = ki->n;
		free(ki->slots);
		*ki = grown;
	}
	*key_slot(ki, map, map->pairs[i].key) = i + 1;
	ki->n++;
}

static bool key_index_has(const struct key_index *ki,
			  const struct cfg_node *map, const char *key)
{
	return ki->nslots > 0 && *key_slot(ki, map, key) != 0;
}

static struct cfg_node *parse_mapping(struct cfg_parser *p,
				      const yaml_event_t *start,
				      const char *path, int depth)
{
	struct cfg_node *map =
		node_new(CFG_MAP, p->file, &start->start_mark, path);
	struct key_index keys = { 0 };
	bool duplicate;

	while (map != NULL) {
		yaml_event_t kev, vev;
		struct cfg_pair *grown;
		struct cfg_node *value;
		char *child_path;
		const char *key;

		if (parse_next(p, &kev) < 0)
			goto fail;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			free(keys.slots);
			return map;
		}
		if (kev.type != YAML_SCALAR_EVENT) {
			cfg_error_at(p->cfg, p->file,
				     (int)kev.start_mark.line + 1,
				     (int)kev.start_mark.column + 1, path,
				     "mapping keys must be plain strings");
			yaml_event_delete(&kev);
			goto fail;
		}
		key = (const char *)kev.data.scalar.value;
		duplicate = key_index_has(&keys, map, key);
		if (duplicate) {
			cfg_error_at(p->cfg, p->file, (int)kev.start_mark.line + 1,
				     (int)kev.start_mark.column + 1, path,
				     "duplicate key '%s'", key);
			p->failed = true;
		}
		child_path = *path ? xasprintf("%s.%s", path, key)
				   : xstrdup(key);
		if (parse_next(p, &vev) < 0) {
			free(child_path);
			yaml_event_delete(&kev);
			goto fail;
		}
		value = parse_node(p, &vev, child_path, depth + 1);
		yaml_event_delete(&vev);
		free(child_path);
		if (value == NULL) {
			yaml_event_delete(&kev);
			goto fail;
		}
		grown = realloc(map->pairs, (map->npairs + 1) * sizeof(*grown));
		if (grown == NULL) {
			node_free(value);
			yaml_event_delete(&kev);
			goto fail;
		}
		map->pairs = grown;
		map->pairs[map->npairs] = (struct cfg_pair){
			.key = xstrdup(key),
			.value = value,
			.file = p->file,
			.line = (int)kev.start_mark.line + 1,
			.column = (int)kev.start_mark.column + 1,
		};
		/* A duplicate stays out: the first pair keeps its key. */
		if (!duplicate)
			key_index_add(&keys, map, map->npairs);
		map->npairs++;
		yaml_event_delete(&kev);
	}
	return NULL;
fail:
	free(keys.slots);
	node_free(map);
	return NULL;
}

static struct cfg_node *parse_sequence(struct cfg_parser *p,
				       const yaml_event_t *start,
				       const char *path, int depth)
{
	struct cfg_node *seq =
		node_new(CFG_SEQ, p->file, &start->start_mark, path);

	while (seq != NULL) {
		yaml_event_t ev;
		struct cfg_node **grown;
		struct cfg_node *item;
		char *child_path;

		if (parse_next(p, &ev) < 0)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return seq;
		}
		child_path = xasprintf("%s[%zu]", path, seq->nitems);
		item = parse_node(p, &ev, child_path, depth + 1);
		yaml_event_delete(&ev);
		free(child_path);
		if (item == NULL)
			goto fail;
		grown = realloc(seq->items, (seq->nitems + 1) * sizeof(*grown));
		if (grown == NULL) {
			node_free(item);
			goto fail;
		}
		seq->items = grown;
		seq->items[seq->nitems++] = item;
	}
	return NULL;
fail:
	node_free(seq);
	return NULL;
}

/* Build the node that starts with event ev; NULL after recording an error. */
static struct cfg_node *parse_node(struct cfg_parser *p, yaml_event_t *ev,
				   const char *path, int depth)
{
	struct cfg_node *n;

	if (depth > CFG_MAX_DEPTH) {
		cfg_error_at(p->cfg, p->file, (int)ev->start_mark.line + 1,
			     (int)ev->start_mark.column + 1, path,
			     "nesting deeper than %d levels", CFG_MAX_DEPTH);
		p->failed = true;
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if (scalar_is_null(ev))
			return node_new(CFG_NULL, p->file, &ev->start_mark,
					path);
		n = node_new(CFG_SCALAR, p->file, &ev->start_mark, path);
		if (n != NULL)
			n->value = xstrdup((const char *)ev->data.scalar.value);
		return n;
	case YAML_MAPPING_START_EVENT:
		return parse_mapping(p, ev, path, depth);
	case YAML_SEQUENCE_START_EVENT:
		return parse_sequence(p, ev, path, depth);
	case YAML_ALIAS_EVENT:
		cfg_error_at(p->cfg, p->file, (int)ev->start_mark.line + 1,
			     (int)ev->start_mark.column + 1, path,
			     "YAML aliases are not supported");
		break;
	default:
		cfg_error_at(p->cfg, p->file, (int)ev->start_mark.line + 1,
			     (int)ev->start_mark.column + 1, path,
			     "unexpected YAML event");
		break;
	}
	p->failed = true;
	return NULL;
}

/*
 * Parse one YAML document from the parser into *ret_root (a mapping, or
 * NULL for an empty document).  Errors are recorded in cfg.
 */
static int parse_document(struct cfg_parser *p, struct cfg_node **ret_root)
{
	yaml_event_t ev;
	struct cfg_node *root = NULL;
	bool in_doc = false;

	for (;;) {
		if (parse_next(p, &ev) < 0)
			goto fail;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			if (in_doc || root != NULL) {
				cfg_error_at(p->cfg, p->file,
					     (int)ev.start_mark.line + 1,
					     (int)ev.start_mark.column + 1,
					     NULL,
					     "only one YAML document per file");
				yaml_event_delete(&ev);
				goto fail;
			}
			in_doc = true;
		} else if (ev.type == YAML_DOCUMENT_END_EVENT) {
			in_doc = false;
		} else if (ev.type != YAML_STREAM_START_EVENT) {
			root = parse_node(p, &ev, "", 0);
			if (root == NULL) {
				yaml_event_delete(&ev);
				goto fail;
			}
			if (root->type == CFG_NULL) {
				node_free(root);
				root = NULL;
			} else if (root->type != CFG_MAP) {
				cfg_error_at(p->cfg, p->file, root->line,
					     root->column, NULL,
					     "the top level must be a mapping of keys");
				node_free(root);
				root = NULL;
				yaml_event_delete(&ev);
				goto fail;
			}
		}
		yaml_event_delete(&ev);
	}
	if (p->failed)
		goto fail;
	*ret_root = root;
	return 0;
fail:
	node_free(root);
	return -EINVAL;
}

static const char *cfg_intern_file(struct cfg *cfg, const char *name)
{
	char **grown = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*grown));

	if (grown == NULL)
		return NULL;
	cfg->files = grown;
	cfg->files[cfg->nfiles] = xstrdup(name);
	return cfg->files[cfg->nfiles++];
}

/* Merge src into dst (both mappings); src's nodes move into dst. */
static void merge_maps(struct cfg_node *dst, struct cfg_node *src)
{
	for (size_t i = 0; i < src->npairs; i++) {
		struct cfg_pair *sp = &src->pairs[i];
		struct cfg_pair *dp = NULL;

		for (size_t j = 0; j < dst->npairs; j++) {
			if (strcmp(dst->pairs[j].key, sp->key) == 0) {
				dp = &dst->pairs[j];
				break;
			}
		}
		if (dp == NULL) {
			struct cfg_pair *grown = realloc(
				dst->pairs, (dst->npairs + 1) * sizeof(*grown));
			if (grown == NULL)
				continue;
			dst->pairs = grown;
			dst->pairs[dst->npairs++] = *sp;
			sp->key = NULL;
			sp->value = NULL;
			continue;
		}
		if (dp->value->type == CFG_MAP && sp->value->type == CFG_MAP) {
			merge_maps(dp->value, sp->value);
		} else if (dp->value->type == CFG_SEQ &&
			   sp->value->type == CFG_SEQ) {
			struct cfg_node *d = dp->value, *s = sp->value;
			struct cfg_node **grown = realloc(
				d->items,
				(d->nitems + s->nitems) * sizeof(*grown));
			if (grown == NULL)
				continue;
			d->items = grown;
			for (size_t k = 0; k < s->nitems; k++) {
				/* Renumber so errors point at the merged index. */
				free(s->items[k]->path);
				s->items[k]->path = xasprintf(
					"%s[%zu]", d->path, d->nitems);
				d->items[d->nitems++] = s->items[k];
			}
			s->nitems = 0;
		} else {
			/* A later file overrides the value, and its location. */
			node_free(dp->value);
			dp->value = sp->value;
			dp->file = sp->file;
			dp->line = sp->line;
			dp->column = sp->column;
			sp->value = NULL;
		}
	}
}

static void cfg_merge_document(struct cfg *cfg, struct cfg_node *root)
{
	if (root == NULL)
		return;
	merge_maps(cfg->root, root);
	node_free(root);
}

static int cfg_parse_into(struct cfg *cfg, const char *name,
			  const char *text, yaml_parser_t *yaml)
{
	struct cfg_parser p = { .cfg = cfg, .file = name, .text = text };
	struct cfg_node *root = NULL;
	int r;

	p.yaml = *yaml;
	r = parse_document(&p, &root);
	*yaml = p.yaml;
	if (r == 0)
		cfg_merge_document(cfg, root);
	return r;
}

static struct cfg *cfg_new(void)
{
	struct cfg *cfg = calloc(1, sizeof(*cfg));
	static const yaml_mark_t origin = { 0, 0, 0 };

	if (cfg == NULL)
		return NULL;
	cfg->root = node_new(CFG_MAP, "", &origin, "");
	if (cfg->root == NULL) {
		free(cfg);
		return NULL;
	}
	return cfg;
}

int cfg_load_string(const char *name, const char *text, struct cfg **ret_cfg)
{
	struct cfg *cfg = cfg_new();
	yaml_parser_t yaml;
	const char *file;

	if (cfg == NULL)
		return -ENOMEM;
	file = cfg_intern_file(cfg, name);
	cfg->root->file = file;
	if (!yaml_parser_initialize(&yaml)) {
		cfg_free(cfg);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&yaml, (const unsigned char *)text,
				     strlen(text));
	cfg_parse_into(cfg, file, text, &yaml);
	yaml_parser_delete(&yaml);
	*ret_cfg = cfg;
	return 0;
}

static void cfg_load_file(struct cfg *cfg, const char *path)
{
	const char *file = cfg_intern_file(cfg, path);
	yaml_parser_t yaml;
	FILE *fp;

	if (file == NULL)
		return;
	fp = fopen(path, "re");
	if (fp == NULL) {
		cfg_add_error(cfg, xasprintf("%s: cannot read: %s", path,
					     strerror(errno)));
		return;
	}
	if (!yaml_parser_initialize(&yaml)) {
		fclose(fp);
		return;
	}
	yaml_parser_set_input_file(&yaml, fp);
	cfg_parse_into(cfg, file, NULL, &yaml);
	yaml_parser_delete(&yaml);
	fclose(fp);
}

static int yaml_name_filter(const struct dirent *de)
{
	size_t len = strlen(de->d_name);

	if (de->d_name[0] == '.')
		return 0;
	return (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0) ||
	       (len > 4 && strcmp(de->d_name + len - 4, ".yml") == 0);
}

int cfg_load(const char *main_path, const char *dropin_dir,
	     struct cfg **ret_cfg)
{
	struct cfg *cfg = cfg_new();
	struct dirent **names = NULL;
	int n;

	if (cfg == NULL)
		return -ENOMEM;
	cfg->root->file = cfg_intern_file(cfg, main_path);
	cfg_load_file(cfg, main_path);

	if (dropin_dir != NULL) {
		n = scandir(dropin_dir, &names, yaml_name_filter, alphasort);
		if (n < 0 && errno != ENOENT)
			cfg_add_error(cfg,
				      xasprintf("%s: cannot read directory: %s",
						dropin_dir, strerror(errno)));
		for (int i = 0; i < n; i++) {
			char *path = xasprintf("%s/%s", dropin_dir,
					       names[i]->d_name);
			cfg_load_file(cfg, path);
			free(path);
			free(names[i]);
		}
		free(names);
	}
	*ret_cfg = cfg;
	return 0;
}

void cfg_free(struct cfg *cfg)
{
	if (cfg == NULL)
		return;
	node_free(cfg->root);
	for (size_t i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	for (size_t i = 0; i < cfg->nerrors; i++)
		free(cfg->errors[i]);
	free(cfg->files);
	free(cfg->errors);
	free(cfg);
}

static void report_unused(struct cfg *cfg, const struct cfg_node *n)
{
	for (size_t i = 0; i < n->npairs; i++) {
		const struct cfg_pair *pr = &n->pairs[i];

		if (!pr->used)
			cfg_error_at(cfg, pr->file, pr->line, pr->column,
				     pr->value->path, "unknown key '%s'",
				     pr->key);
		else
			report_unused(cfg, pr->value);
	}
	for (size_t i = 0; i < n->nitems; i++)
		report_unused(cfg, n->items[i]);
}

size_t cfg_finish(struct cfg *cfg)
{
	report_unused(cfg, cfg->root);
	return cfg->nerrors;
}

int cfg_expect_map(struct cfg *cfg, const struct cfg_node *node)
{
	if (node == NULL || node->type == CFG_MAP || node->type == CFG_NULL)
		return 0;
	cfg_error(cfg, node, "expected a mapping of keys");
	return -EINVAL;
}

struct cfg_node *cfg_get(struct cfg *cfg, const struct cfg_node *map,
			 const char *key)
{
	(void)cfg;
	if (map == NULL || map->type != CFG_MAP)
		return NULL;
	for (size_t i = 0; i < map->npairs; i++) {
		if (strcmp(map->pairs[i].key, key) == 0) {
			map->pairs[i].used = true;
			return map->pairs[i].value;
		}
	}
	return NULL;
}

/* Look up key and require a scalar; 0 absent/null, 1 found, <0 error. */
static int get_scalar(struct cfg *cfg, const struct cfg_node *map,
		      const char *key, const struct cfg_node **ret_node)
{
	const struct cfg_node *n = cfg_get(cfg, map, key);

	if (n == NULL || n->type == CFG_NULL)
		return 0;
	if (n->type != CFG_SCALAR) {
		cfg_error(cfg, n, "expected a single value, not a %s",
			  n->type == CFG_MAP ? "mapping" : "list");
		return -EINVAL;
	}
	*ret_node = n;
	return 1;
}

int cfg_node_string(struct cfg *cfg, const struct cfg_node *node,
		    char **ret_str)
{
	if (node->type != CFG_SCALAR) {
		cfg_error(cfg, node, "expected a string");
		return -EINVAL;
	}
	*ret_str = xstrdup(node->value);
	return 1;
}

int cfg_get_string(struct cfg *cfg, const struct cfg_node *map,
		   const char *key, char **ret_str)
{
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);

	if (r <= 0)
		return r;
	free(*ret_str);
	*ret_str = xstrdup(n->value);
	return 1;
}

int cfg_get_path(struct cfg *cfg, const struct cfg_node *map, const char *key,
		 char **ret_path)
{
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);

	if (r <= 0)
		return r;
	if (n->value[0] != '/') {
		cfg_error(cfg, n, "'%s' is not an absolute path", n->value);
		return -EINVAL;
	}
	free(*ret_path);
	*ret_path = xstrdup(n->value);
	return 1;
}

int cfg_get_bool(struct cfg *cfg, const struct cfg_node *map, const char *key,
		 bool *ret_bool)
{
	static const char *const yes[] = { "true", "yes", "on", "True", "Yes",
					   "On", "TRUE", "YES", "ON", NULL };
	static const char *const no[] = { "false", "no", "off", "False", "No",
					  "Off", "FALSE", "NO", "OFF", NULL };
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);

	if (r <= 0)
		return r;
	for (size_t i = 0; yes[i]; i++) {
		if (strcmp(n->value, yes[i]) == 0) {
			*ret_bool = true;
			return 1;
		}
		if (strcmp(n->value, no[i]) == 0) {
			*ret_bool = false;
			return 1;
		}
	}
	cfg_error(cfg, n, "expected true or false, got '%s'", n->value);
	return -EINVAL;
}

int cfg_get_int(struct cfg *cfg, const struct cfg_node *map, const char *key,
		int64_t min, int64_t max, int64_t *ret_int)
{
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);
	int64_t v;

	if (r <= 0)
		return r;
	if (parse_int64(n->value, &v) < 0) {
		cfg_error(cfg, n, "expected an integer, got '%s'", n->value);
		return -EINVAL;
	}
	if (v < min || v > max) {
		cfg_error(cfg, n, "%" PRId64 " is out of range %" PRId64
			  "..%" PRId64, v, min, max);
		return -ERANGE;
	}
	*ret_int = v;
	return 1;
}

int cfg_get_double(struct cfg *cfg, const struct cfg_node *map,
		   const char *key, double min, double max, double *ret)
{
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);
	double v;

	if (r <= 0)
		return r;
	if (parse_double(n->value, &v) < 0) {
		cfg_error(cfg, n, "expected a number, got '%s'", n->value);
		return -EINVAL;
	}
	if (v < min || v > max) {
		cfg_error(cfg, n, "%g is out of range %g..%g", v, min, max);
		return -ERANGE;
	}
	*ret = v;
	return 1;
}

int cfg_node_duration(struct cfg *cfg, const struct cfg_node *node,
		      int64_t *ret_ms)
{
	int64_t v;

	if (node->type != CFG_SCALAR || parse_duration_ms(node->value, &v) < 0) {
		cfg_error(cfg, node,
			  "expected a duration such as 30s, 5m, 2h or 7d, got '%s'",
			  node->type == CFG_SCALAR ? node->value : "a structure");
		return -EINVAL;
	}
	*ret_ms = v;
	return 1;
}

int cfg_get_duration(struct cfg *cfg, const struct cfg_node *map,
		     const char *key, int64_t *ret_ms)
{
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);

	if (r <= 0)
		return r;
	return cfg_node_duration(cfg, n, ret_ms);
}

int cfg_node_size(struct cfg *cfg, const struct cfg_node *node,
		  uint64_t *ret_bytes)
{
	uint64_t v;

	if (node->type != CFG_SCALAR || parse_size(node->value, &v) < 0) {
		cfg_error(cfg, node,
			  "expected a size such as 512MiB or 10GiB, got '%s'",
			  node->type == CFG_SCALAR ? node->value : "a structure");
		return -EINVAL;
	}
	*ret_bytes = v;
	return 1;
}

int cfg_get_size(struct cfg *cfg, const struct cfg_node *map, const char *key,
		 uint64_t *ret_bytes)
{
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);

	if (r <= 0)
		return r;
	return cfg_node_size(cfg, n, ret_bytes);
}

int cfg_get_percent(struct cfg *cfg, const struct cfg_node *map,
		    const char *key, double *ret_percent)
{
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);
	double v;

	if (r <= 0)
		return r;
	if (parse_percent(n->value, &v) < 0) {
		cfg_error(cfg, n, "expected a percentage from 0%% to 100%%, got '%s'",
			  n->value);
		return -EINVAL;
	}
	*ret_percent = v;
	return 1;
}

int cfg_get_enum(struct cfg *cfg, const struct cfg_node *map, const char *key,
		 const char *const *names, int *ret_index)
{
	const struct cfg_node *n;
	int r = get_scalar(cfg, map, key, &n);
	char choices[256] = "";

	if (r <= 0)
		return r;
	for (int i = 0; names[i]; i++) {
		if (strcmp(n->value, names[i]) == 0) {
			*ret_index = i;
			return 1;
		}
		if (i > 0)
			strlcat_safe(choices, ", ", sizeof(choices));
		strlcat_safe(choices, names[i], sizeof(choices));
	}
	cfg_error(cfg, n, "'%s' is not one of: %s", n->value, choices);
	return -EINVAL;
}

void cfg_string_list_free(char **list)
{
	if (list == NULL)
		return;
	for (size_t i = 0; list[i]; i++)
		free(list[i]);
	free(list);
}

int cfg_get_string_list(struct cfg *cfg, const struct cfg_node *map,
			const char *key, char ***ret_list)
{
	const struct cfg_node *n = cfg_get(cfg, map, key);
	char **list;

	if (n == NULL || n->type == CFG_NULL)
		return 0;
	if (n->type == CFG_SCALAR) {
		list = xcalloc(2, sizeof(*list));
		list[0] = xstrdup(n->value);
	} else if (n->type == CFG_SEQ) {
		list = xcalloc(n->nitems + 1, sizeof(*list));
		for (size_t i = 0; i < n->nitems; i++) {
			if (n->items[i]->type != CFG_SCALAR) {
				cfg_error(cfg, n->items[i], "expected a string");
				cfg_string_list_free(list);
				return -EINVAL;
			}
			list[i] = xstrdup(n->items[i]->value);
		}
	} else {
		cfg_error(cfg, n, "expected a list of strings");
		return -EINVAL;
	}
	cfg_string_list_free(*ret_list);
	*ret_list = list;
	return 1;
}

int parse_duration_ms(const char *text, int64_t *ret_ms)
{
	static const struct {
		const char *suffix;
		int64_t ms;
	} units[] = {
		{ "ms", 1 },	      { "s", 1000 },	  { "sec", 1000 },
		{ "m", 60000 },	      { "min", 60000 },	  { "h", 3600000 },
		{ "d", 86400000 },    { "w", 604800000 }, { "", 1000 },
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || errno != 0 || v < 0 || !isfinite(v))
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			double ms = v * (double)units[i].ms;
			if (ms > 1e15)
				return -ERANGE;
			*ret_ms = (int64_t)llround(ms);
			return 0;
		}
	}
	return -EINVAL;
}

int parse_size(const char *text, uint64_t *ret_bytes)
{
	static const struct {
		const char *suffix;
		double factor;
	} units[] = {
		{ "", 1 },	     { "B", 1 },
		{ "K", 1024.0 },     { "KiB", 1024.0 },
		{ "KB", 1e3 },	     { "kB", 1e3 },
		{ "M", 1048576.0 },  { "MiB", 1048576.0 },
		{ "MB", 1e6 },	     { "G", 1073741824.0 },
		{ "GiB", 1073741824.0 }, { "GB", 1e9 },
		{ "T", 1099511627776.0 }, { "TiB", 1099511627776.0 },
		{ "TB", 1e12 },
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || errno != 0 || v < 0 || !isfinite(v))
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			double bytes = v * units[i].factor;
			if (bytes >= 1.8e19)
				return -ERANGE;
			*ret_bytes = (uint64_t)llround(bytes);
			return 0;
		}
	}
	return -EINVAL;
}

int parse_percent(const char *text, double *ret_percent)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || errno != 0 || !isfinite(v))
		return -EINVAL;
	while (*end == ' ')
		end++;
	if (*end == '%')
		end++;
	if (*end != '\0' || v < 0 || v > 100)
		return -EINVAL;
	*ret_percent = v;
	return 0;
}

char *cfg_dropin_dir_for(const char *main_path)
{
	const char *slash = strrchr(main_path, '/');
	const char *dot = strrchr(main_path, '.');
	size_t stem;

	if (dot == NULL || (slash != NULL && dot < slash))
		return xasprintf("%s.d", main_path);
	stem = (size_t)(dot - main_path);
	return xasprintf("%.*s.d", (int)stem, main_path);
}

size_t cfg_print_errors(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->nerrors; i++)
		fprintf(stderr, "%s\n", cfg->errors[i]);
	return cfg->nerrors;
}
