/*
 * Runs a fuzz target over its seed corpus once, without libFuzzer: the
 * regression test `make test` runs (as test_fuzz_<target>), so that every
 * input that ever crashed, once added to tests/fuzz/corpus/<target>/,
 * stays fixed.  The corpus directory follows from the program's name.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (1024 * 1024)

static int run_file(const char *path)
{
	FILE *fp = fopen(path, "rbe");
	uint8_t *buf;
	size_t n;

	if (fp == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(INPUT_MAX);
	n = fread(buf, 1, INPUT_MAX, fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	const char *prefix = "test_fuzz_";
	char dir[512];
	struct dirent **names;
	int n, ran = 0;

	base = base ? base + 1 : argv[0];
	if (argc > 1)
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	else if (strncmp(base, prefix, strlen(prefix)) == 0)
		snprintf(dir, sizeof(dir), "tests/fuzz/corpus/%s",
			 base + strlen(prefix));
	else
		return 2;
	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[1024];

		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			if (run_file(path) < 0)
				return 1;
			ran++;
		}
		free(names[i]);
	}
	free(names);
	if (ran == 0) {
		fprintf(stderr, "%s: no corpus inputs\n", dir);
		return 1;
	}
	printf("[  PASSED  ] %d corpus inputs of %s.\n", ran, dir);
	return 0;
}
