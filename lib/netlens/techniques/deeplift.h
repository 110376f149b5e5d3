// DeepLIFT keeps the recorded forward pass of the last single reference of each of a few models,
// so that the next job against the same reference replays it instead of running it again
// (techniques/deeplift.cpp, ReferenceCache).
#pragma once

namespace netlens {

// Drops every kept reference pass: the next DeepLIFT job records its reference again (the
// benchmark times a first job this way).
void ForgetDeepLiftReferences();

}  // namespace netlens
