#!/usr/bin/env python3
"""ctest cuda_flavour_units (label unit): tests/docker/cuda_flavour_units.py, which picks the units the CUDA
compile check compiles, on a hand-made source tree and two hand-made compile databases whose answer is
known: a unit is picked when a macro only the CUDA configuration defines is named two includes down,
when it includes a header found in a CUDA-only include directory, or when only the CUDA configuration
has it; never for the build directory's own path, which differs between any two trees."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda_flavour_units.py")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class CudaFlavourUnits(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        t = self.tmp.name
        self.root, self.cuda_inc = os.path.join(t, "src"), os.path.join(t, "cuda", "include")
        self.cpu_build, self.cuda_build = os.path.join(t, "build-cpu"), os.path.join(t, "build-cuda")
        r = self.root
        write(f"{r}/lib/deep.h", "#pragma once\n#ifdef NEFTUNE_TORCH_CUDA\nint on_gpu();\n#endif\n")
        write(f"{r}/lib/middle.h", '#pragma once\n#include "lib/deep.h"\n')
        write(f"{r}/lib/plain.h", "#pragma once\n#include <vector>\n")
        write(f"{r}/a.cpp", '#include "lib/middle.h"\n')          # the macro, two includes down
        write(f"{r}/b.cpp", '#include "lib/plain.h"\nint b();\n')  # nothing of the CUDA flavour
        write(f"{r}/c.cpp", "#include <cuda_only.h>\n")             # a header only the CUDA dirs have
        write(f"{r}/d.cpp", "int d();\n")                            # a unit only the CUDA flavour builds
        write(f"{r}/e.cpp", '#include "gen/config.h"\n')            # a header generated in the build tree
        write(f"{self.cuda_inc}/cuda_only.h", "int cuda_only();\n")

    def tearDown(self):
        self.tmp.cleanup()

    def database(self, build, units, extra):
        entries = []
        for u in units:
            args = ["c++", "-DFMT_SHARED", f"-DMODULE_DIR=\"{build}/lib\"", f"-I{self.root}", f"-I{build}/gen"] + extra
            args += ["-o", f"CMakeFiles/t.dir/{u}.o", "-c", f"{self.root}/{u}"]
            entries.append({"directory": build, "file": f"{self.root}/{u}", "arguments": args,
                            "output": f"CMakeFiles/t.dir/{u}.o"})
        path = os.path.join(build, "compile_commands.json")
        write(path, json.dumps(entries))
        return path

    def run_script(self, cuda_defines):
        cpu = self.database(self.cpu_build, ["a.cpp", "b.cpp", "c.cpp", "e.cpp"], [])
        cuda = self.database(self.cuda_build, ["a.cpp", "b.cpp", "c.cpp", "d.cpp", "e.cpp"],
                             cuda_defines + ["-isystem", self.cuda_inc])
        return subprocess.run([sys.executable, SCRIPT, self.root, cpu, cuda], capture_output=True, text=True)

    def test_picks_exactly_the_units_that_differ(self):
        r = self.run_script(["-DNEFTUNE_TORCH_CUDA=1", "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE=1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        picked = sorted(os.path.basename(o)[:-2] for o in r.stdout.split())
        self.assertEqual(picked, ["a.cpp", "c.cpp", "d.cpp"])
        self.assertIn("3 of 5 translation units differ", r.stderr)
        self.assertIn("C10_CUDA_NO_CMAKE_CONFIGURE_FILE, NEFTUNE_TORCH_CUDA", r.stderr)
        self.assertNotIn("MODULE_DIR", r.stderr)  # the build directory's path is no difference

    def test_a_unity_batch_is_picked_for_any_of_its_files_and_counts_them_all(self):
        # A unity batch (CMake's Unity/unity_0_cxx.cxx in the build tree) including a.cpp and b.cpp by
        # absolute path: picked for a.cpp's macro; b.cpp is then compiled too (--must accepts it).
        units = []
        for build in (self.cpu_build, self.cuda_build):
            write(f"{build}/Unity/unity_0_cxx.cxx",
                  f'#include "{self.root}/a.cpp"\n#include "{self.root}/b.cpp"\n')
            units.append(json.dumps([{"directory": build, "file": f"{build}/Unity/unity_0_cxx.cxx",
                                      "output": "CMakeFiles/t.dir/Unity/unity_0_cxx.cxx.o",
                                      "arguments": ["c++", f"-I{self.root}"] +
                                                   (["-DNEFTUNE_TORCH_CUDA=1"] if build == self.cuda_build else []) +
                                                   ["-c", f"{build}/Unity/unity_0_cxx.cxx"]}]))
        cpu, cuda = os.path.join(self.cpu_build, "u.json"), os.path.join(self.cuda_build, "u.json")
        write(cpu, units[0])
        write(cuda, units[1])
        r = subprocess.run([sys.executable, SCRIPT, self.root, cpu, cuda, "--must", "b.cpp"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["CMakeFiles/t.dir/Unity/unity_0_cxx.cxx.o"])
        r = subprocess.run([sys.executable, SCRIPT, self.root, cpu, cuda, "--must", "e.cpp"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not among the selected units: e.cpp", r.stderr)

    def test_a_configuration_without_cuda_macros_is_refused(self):
        r = self.run_script([])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("defines no macro the CPU one lacks", r.stderr)


if __name__ == "__main__":
    unittest.main()
