/*
 * YAML configuration: a main file plus drop-ins, validated by its consumers.
 *
 * cfg_load() reads the main file and then every *.yaml file of the drop-in
 * directory in name order into one tree.  Mappings merge key by key,
 * sequences append, and a scalar in a later file replaces the earlier one.
 * Every node remembers file:line:column and its key path.
 *
 * Consumers walk the tree with the cfg_get_*() accessors, which mark the
 * keys they read and record an error (file:line:column, key path, reason)
 * when a value has the wrong type.  cfg_finish() then reports every key
 * nobody read as unknown.  Nothing here exits or logs: errors are collected
 * in the struct cfg and the caller prints them all at once.
 */
#ifndef TOCSIN_CONFIG_H
#define TOCSIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_type {
	CFG_NULL,
	CFG_SCALAR,
	CFG_MAP,
	CFG_SEQ,
};

struct cfg_node;

struct cfg_pair {
	char *key;
	struct cfg_node *value;
	const char *file; /* where the key was written */
	int line;
	int column;
	bool used;
};

struct cfg_node {
	enum cfg_type type;
	const char *file; /* owned by struct cfg */
	int line;
	int column;
	char *path; /* "checks.disk.mounts[0]"; "" for the root */
	char *value; /* CFG_SCALAR only */
	struct cfg_pair *pairs; /* CFG_MAP */
	size_t npairs;
	struct cfg_node **items; /* CFG_SEQ */
	size_t nitems;
};

struct cfg {
	struct cfg_node *root; /* always a CFG_MAP after cfg_load() */
	char **files;
	size_t nfiles;
	char **errors;
	size_t nerrors;
};

/*
 * Read main_path and then dropin_dir/\*.yaml (dropin_dir may be NULL or
 * missing).  Returns 0 and a struct cfg that may carry errors (syntax
 * errors, unreadable files); -ENOMEM only when nothing could be allocated.
 */
int cfg_load(const char *main_path, const char *dropin_dir,
	     struct cfg **ret_cfg);
/* Parse YAML text (for tests and for in-memory defaults). */
int cfg_load_string(const char *name, const char *text, struct cfg **ret_cfg);
void cfg_free(struct cfg *cfg);
/* The drop-in directory that goes with a main file: agent.yaml -> agent.d */
char *cfg_dropin_dir_for(const char *main_path);
/* Print every error to stderr, one per line; returns how many. */
size_t cfg_print_errors(const struct cfg *cfg);

/* Record an error located at node (or the key of pair when not NULL). */
void cfg_error(struct cfg *cfg, const struct cfg_node *node, const char *fmt,
	       ...) __attribute__((format(printf, 3, 4)));
/*
 * Record an error whose text already says where (file:line:column), for
 * errors found in files loaded on their own (trap mappings) or found after
 * their file was closed.
 */
void cfg_error_text(struct cfg *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report every key no accessor read.  Returns the total error count. */
size_t cfg_finish(struct cfg *cfg);

/*
 * Accessors.  map may be NULL or CFG_NULL (treated as an empty mapping).
 * Each returns 1 when the key was present and valid (result stored),
 * 0 when absent or null (result untouched), negative after recording an
 * error (result untouched).
 */
struct cfg_node *cfg_get(struct cfg *cfg, const struct cfg_node *map,
			 const char *key);
int cfg_expect_map(struct cfg *cfg, const struct cfg_node *node);
int cfg_get_string(struct cfg *cfg, const struct cfg_node *map,
		   const char *key, char **ret_str);
int cfg_get_bool(struct cfg *cfg, const struct cfg_node *map, const char *key,
		 bool *ret_bool);
int cfg_get_int(struct cfg *cfg, const struct cfg_node *map, const char *key,
		int64_t min, int64_t max, int64_t *ret_int);
int cfg_get_duration(struct cfg *cfg, const struct cfg_node *map,
		     const char *key, int64_t *ret_ms);
int cfg_get_size(struct cfg *cfg, const struct cfg_node *map, const char *key,
		 uint64_t *ret_bytes);
int cfg_get_percent(struct cfg *cfg, const struct cfg_node *map,
		    const char *key, double *ret_percent);
int cfg_get_double(struct cfg *cfg, const struct cfg_node *map,
		   const char *key, double min, double max, double *ret);
int cfg_get_enum(struct cfg *cfg, const struct cfg_node *map, const char *key,
		 const char *const *names, int *ret_index);
/* A string that must be an absolute path (replaces *ret_path). */
int cfg_get_path(struct cfg *cfg, const struct cfg_node *map, const char *key,
		 char **ret_path);
/* A sequence of scalars; ret_list is NULL-terminated and owned by caller. */
int cfg_get_string_list(struct cfg *cfg, const struct cfg_node *map,
			const char *key, char ***ret_list);

/* The same conversions on a node already in hand (sequence items). */
int cfg_node_string(struct cfg *cfg, const struct cfg_node *node,
		    char **ret_str);
int cfg_node_duration(struct cfg *cfg, const struct cfg_node *node,
		      int64_t *ret_ms);
int cfg_node_size(struct cfg *cfg, const struct cfg_node *node,
		  uint64_t *ret_bytes);

void cfg_string_list_free(char **list);

/* Plain text parsers shared with the CLI and the API (no cfg needed). */
int parse_duration_ms(const char *text, int64_t *ret_ms);
int parse_size(const char *text, uint64_t *ret_bytes);
int parse_percent(const char *text, double *ret_percent);

#endif
