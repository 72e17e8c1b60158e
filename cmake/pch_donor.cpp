// The translation unit of the precompiled-header donor targets (cmake/NeftunePch.cmake): empty, it only
// makes CMake compile the precompiled header that the other targets reuse.
