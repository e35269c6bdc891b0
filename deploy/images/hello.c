/* hello-world:latest — the first image a new kran cluster runs.
 * Built with `gcc -static -Os -s` so the image holds this one file. */
#include <unistd.h>

static const char message[] =
    "\n"
    "Hello from kran!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "\n"
    "To generate this message, kran took the following steps:\n"
    " 1. The kran client contacted the kran controller.\n"
    " 2. The controller chose a node and asked its kran agent to run a container.\n"
    " 3. The agent created a new container from the \"hello-world\" image in its\n"
    "    local image store, which ran the executable that produced the output\n"
    "    you are currently reading.\n"
    " 4. The agent streamed that output back through the controller to the\n"
    "    kran client, which sent it to your terminal.\n"
    "\n"
    "To try something more ambitious, you can run a shell with:\n"
    " $ kran run -it busybox sh\n"
    "\n"
    "For more examples and ideas, see the README.md of kran.\n"
    "\n";

int main(void)
{
    size_t done = 0;
    while (done < sizeof message - 1) {
        ssize_t n = write(STDOUT_FILENO, message + done, sizeof message - 1 - done);
        if (n <= 0)
            return 1;
        done += (size_t)n;
    }
    return 0;
}
