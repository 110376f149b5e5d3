#pragma once

namespace netlens {

// Parses the command line and runs it. Throws netlens errors; main maps them to exit codes.
int RunCommandLine(int argc, char** argv);

}  // namespace netlens
