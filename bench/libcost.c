/*
 * What each library costs the agent in memory, measured alone.
 *
 * Compiled once per library by bench/footprint.sh (-DUSE_SQLITE, ...);
 * each build links only that library, does what the agent does with it
 * once, and prints its own Rss and Pss from /proc/self/smaps_rollup.  The
 * build with none of them is the floor a C program with libc pays.
 */
#include <stdio.h>
#include <string.h>

#ifdef USE_SQLITE
#include <sqlite3.h>
#endif
#ifdef USE_CURL
#include <curl/curl.h>
#endif
#ifdef USE_SDBUS
#include <systemd/sd-bus.h>
#endif
#ifdef USE_JANSSON
#include <jansson.h>
#endif
#ifdef USE_YAML
#include <yaml.h>
#endif

static void print_rollup(const char *what)
{
	char line[256];
	long rss = -1, pss = -1, anon = -1;
	FILE *fp = fopen("/proc/self/smaps_rollup", "re");

	while (fp && fgets(line, sizeof(line), fp)) {
		if (strncmp(line, "Rss:", 4) == 0)
			sscanf(line + 4, "%ld", &rss);
		else if (strncmp(line, "Pss:", 4) == 0)
			sscanf(line + 4, "%ld", &pss);
		else if (strncmp(line, "Pss_Anon:", 9) == 0)
			sscanf(line + 9, "%ld", &anon);
	}
	if (fp)
		fclose(fp);
	printf("libcost: %-26s RSS %5ld kB  PSS %5ld kB (anon %ld kB)\n", what,
	       rss, pss, anon);
}

int main(int argc, char **argv)
{
	const char *what = "libc only";

	(void)argc;
#ifdef USE_SQLITE
	{
		sqlite3 *db;
		char path[256];

		snprintf(path, sizeof(path), "%s/libcost.db", argc > 1 ? argv[1] : "/tmp");
		sqlite3_open(path, &db);
		sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(a);"
				 "INSERT INTO t VALUES (1); SELECT * FROM t;", NULL, NULL, NULL);
		what = "sqlite3 (open, WAL, a row)";
		print_rollup(what);
		sqlite3_close(db);
		return 0;
	}
#endif
#ifdef USE_CURL
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl_easy_cleanup(curl_easy_init());
	what = "libcurl (global init)";
#endif
#ifdef USE_SDBUS
	{
		sd_bus *bus = NULL;

		sd_bus_open_system(&bus);
		what = "libsystemd (sd-bus open)";
		print_rollup(what);
		sd_bus_unref(bus);
		return 0;
	}
#endif
#ifdef USE_JANSSON
	json_decref(json_pack("{s:i}", "a", 1));
	what = "jansson";
#endif
#ifdef USE_YAML
	{
		yaml_parser_t p;

		yaml_parser_initialize(&p);
		yaml_parser_delete(&p);
		what = "libyaml";
	}
#endif
	(void)argv;
	print_rollup(what);
	return 0;
}
