#include "trainer/data/records.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "trainer/data/conversations.h"
#include "trainer/io/crc32c.h"
#include "trainer/io/file_read.h"
#include "trainer/io/json_error.h"

namespace neftune::data {
namespace {

using json = nlohmann::json;

struct Fields {
  const char* instruction;
  const char* input;
  const char* output;
};
constexpr Fields kAlpaca{"instruction", "input", "output"};
constexpr Fields kDolly{"instruction", "context", "response"};

// Returns an empty string on success, else what is wrong with the record.
std::string parse_record(const json& j, config::DataFormat format, Record& out) {
  if (!j.is_object()) return "is not a JSON object";
  const auto conv = conversation_format(j);
  if (format == config::DataFormat::auto_detect && conv) format = *conv;
  if (conv && (format == config::DataFormat::alpaca || format == config::DataFormat::dolly) &&
      !j.contains("instruction")) {
    return std::string("is a conversation, not an ") + (format == config::DataFormat::alpaca ? "Alpaca" : "Dolly") +
           " record: set data.format to " + config::to_string(*conv).data() + " or auto";
  }
  if (format == config::DataFormat::sharegpt || format == config::DataFormat::messages)
    return parse_conversation(j, format, /*training=*/true, out.messages);
  Fields f = kAlpaca;
  if (format == config::DataFormat::dolly ||
      (format == config::DataFormat::auto_detect && (j.contains("response") || j.contains("context"))))
    f = kDolly;
  auto get = [&](const char* key, bool required, std::string& dst) -> std::string {
    if (!j.contains(key) || j[key].is_null()) return required ? std::string("field '") + key + "' is missing" : "";
    if (!j[key].is_string()) return std::string("field '") + key + "' is not a string";
    dst = j[key].get<std::string>();
    return "";
  };
  std::string err = get(f.instruction, true, out.instruction);
  if (err.empty()) err = get(f.input, false, out.input);
  if (err.empty()) err = get(f.output, true, out.output);
  if (err.empty() && out.instruction.empty()) err = std::string("field '") + f.instruction + "' is empty";
  return err;
}

}  // namespace

std::string record_location(const Record& r, size_t position) {
  if (r.index < 0) return "record " + std::to_string(position);
  return "record " + std::to_string(r.index) + (r.line > 0 ? " (line " + std::to_string(r.line) + ")" : "");
}

std::vector<Record> read_records(const std::string& path, config::DataFormat format, config::OnMalformed on_malformed,
                                 ReadStats* stats) {
  if (std::filesystem::is_directory(path))
    throw DataError(path + ": is a directory, not a data file (name a JSON or JSONL data file in it)");
  std::string text = io::read_input_as<DataError>(path, io::Input::data, "data file (check data.train / data.eval)");
  ReadStats local;
  ReadStats& st = stats ? *stats : local;
  st.bytes = text.size();
  st.crc32c = io::crc32c_extend(0, text.data(), text.size());
  // A UTF-8 byte order mark (editors on Windows write one) is not part of the data: without it a JSON
  // array is recognised as one, and no record or line starts with it.
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    throw DataError(path + ": the data file is empty (an empty dataset cannot be trained on)");

  std::vector<Record> records;
  auto take = [&](const json& j, const std::string& where, int64_t index, int64_t line) {
    Record r;
    r.index = index;
    r.line = line;
    const std::string err = parse_record(j, format, r);
    if (err.empty()) {
      records.push_back(std::move(r));
      ++st.records;
    } else if (on_malformed == config::OnMalformed::skip) {
      ++st.skipped_malformed;
    } else {
      throw DataError(path + ": " + where + ": " + err + " (fix the record or set data.on_malformed: skip)");
    }
  };

  if (text[first] == '[') {
    json arr;
    try {
      arr = json::parse(text);
    } catch (const json::exception& e) {
      throw DataError(path + ": not valid JSON: " + io::json_error(e));
    }
    for (size_t i = 0; i < arr.size(); ++i) take(arr[i], "record " + std::to_string(i), static_cast<int64_t>(i), 0);
  } else {
    std::istringstream lines(text);
    std::string line;
    int64_t lineno = 0, index = 0;
    while (std::getline(lines, line)) {
      ++lineno;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const int64_t at = index++;
      const std::string where = "record " + std::to_string(at) + " (line " + std::to_string(lineno) + ")";
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception& e) {
        if (on_malformed == config::OnMalformed::skip) {
          ++st.skipped_malformed;
          continue;
        }
        throw DataError(path + ": " + where + ": not valid JSON: " + io::json_error(e) +
                        " (fix the record or set data.on_malformed: skip)");
      }
      take(j, where, at, lineno);
    }
  }
  if (records.empty()) {
    throw DataError(path + ": no usable records (" + std::to_string(st.skipped_malformed) +
                    " malformed skipped): an empty dataset cannot be trained on");
  }
  return records;
}

}  // namespace neftune::data
