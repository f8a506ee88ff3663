/*
 * The guest's udevd, udevadm and systemd-tmpfiles for harness boots: the compiled twin of
 * udev-standin.sh (harness.vm.standins builds it static and binds it over those files in the
 * mount namespace QEMU's 9p server runs in, so only the guest sees it).
 *
 * `--daemon` (virtme-ng-init starting udevd): make /dev/virtio-ports/<name> for every
 * virtio console port, which udev's rule would have made and virtme-ng-init needs for the
 * script's I/O. Anything else (udevadm trigger/settle, systemd-tmpfiles): success at once.
 *
 * Why compiled: under TCG every fork+exec over 9p costs 40-80 ms, and the shell version
 * ran sh plus one ln(1) per port (0.4 s of a lean boot, 0.75-1.1 s of a Debian one); a
 * static binary needs no dynamic loader either.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PORTS "/sys/class/virtio-ports"
#define LINKS "/dev/virtio-ports"

static void link_port(const char *port)
{
	char path[512], name[256], target[300], link[600];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), PORTS "/%s/name", port);
	f = fopen(path, "r");
	if (!f)
		return;
	n = fread(name, 1, sizeof(name) - 1, f);
	fclose(f);
	name[n] = '\0';
	name[strcspn(name, "\n")] = '\0';
	if (!name[0] || strchr(name, '/'))
		return;
	snprintf(target, sizeof(target), "../%s", port);
	snprintf(link, sizeof(link), LINKS "/%s", name);
	unlink(link);
	if (symlink(target, link) != 0)
		perror(link);
}

int main(int argc, char **argv)
{
	DIR *dir;
	struct dirent *entry;

	if (argc < 2 || strcmp(argv[1], "--daemon") != 0)
		return 0;
	mkdir(LINKS, 0755);
	dir = opendir(PORTS);
	if (!dir)
		return 0;
	while ((entry = readdir(dir)) != NULL)
		if (entry->d_name[0] != '.')
			link_port(entry->d_name);
	closedir(dir);
	return 0;
}
