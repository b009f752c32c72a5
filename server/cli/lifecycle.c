/*
 * What the alert lifecycle adds to a ticket's page in the CLI: whether it
 * flaps, the parent it is attached to, and its children.
 */
#include <stdio.h>

#include "cli.h"

void cli_print_lifecycle(json_t *t)
{
	json_t *children = json_object_get(t, "children"), *c;
	size_t i;

	if (json_is_true(json_object_get(t, "flapping")))
		printf("  flapping:    yes (one ticket until it calms down)\n");
	if (json_is_integer(json_object_get(t, "parent_id")))
		printf("  parent:      #%lld (this host is behind a device that is down)\n",
		       (long long)json_integer_value(json_object_get(t, "parent_id")));
	if (json_array_size(children) == 0)
		return;
	printf("\nChildren (hosts behind this device):\n");
	json_array_foreach(children, i, c) {
		printf("  #%-6lld %-11s %-9s %-20s %s\n",
		       (long long)json_integer_value(json_object_get(c, "id")),
		       cli_str(c, "status"), cli_str(c, "state"),
		       cli_str(c, "host"), cli_str(c, "summary"));
	}
}
