// asset_versions: content-hashed URLs for the page's assets.  At load, every non-html file gets a
// version (a hash of its final bytes), and the URLs that name files of the table, in HTML src/href
// values and in JavaScript import/export specifiers, are rewritten to "...?v=<version>",
// dependencies first, so that a changed module changes its importers' versions too.  Such URLs
// can be cached for a year as immutable.  No I/O: static_files reads the files and calls it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace voice_broker {

// A file as read from disk, before its references are versioned.
struct loaded_file {
    std::string key;  // "js/api.js"
    std::string content;
    std::string content_type;
};

bool is_html(std::string_view content_type);

// The first `bytes` bytes of the SHA-256 of data, in hex (versions and ETags).
std::string sha256_hex(std::string_view data, int bytes);

// Rewrites the references in every file's content and returns each file's version (empty for
// html, which is never versioned).  Modules that import each other in a cycle share one version.
std::vector<std::string> assign_versions(std::vector<loaded_file>& files);

}  // namespace voice_broker
