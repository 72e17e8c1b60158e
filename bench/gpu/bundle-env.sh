# Sourced from a bundle made by bench/gpu/make-bundle.sh (copied there as env.sh): where its libraries,
# CMake packages and pkg-config files are, and what relocates its Open MPI. Nothing here changes the
# library path of the calling shell: NEFTUNE_BUNDLE_LIB_PATH is for the programs built against the
# bundle (check.sh puts it on LD_LIBRARY_PATH for them only, so the target's Python and CMake keep
# their own libraries).
# shellcheck shell=bash

NEFTUNE_BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export NEFTUNE_BUNDLE
_nb_usr=$NEFTUNE_BUNDLE/root/usr
_nb_lib=$_nb_usr/lib/x86_64-linux-gnu

# Open MPI 4.1 (Debian: prefix /usr, libdir .../openmpi/lib) and its external PMIx, relocated.
export OPAL_PREFIX=$_nb_usr
export PMIX_PREFIX=$_nb_lib/pmix2
export MPI_HOME=$_nb_lib/openmpi
# A process started without mpirun initialises MPI as a singleton without forking an orted daemon.
export OMPI_MCA_ess_singleton_isolated=1
# One node: shared memory and loopback; no warning about the network plugins left out of the bundle.
export OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_pml=ob1
export OMPI_MCA_btl_base_warn_component_unused=0
export OMPI_MCA_btl_vader_single_copy_mechanism=none

export NEFTUNE_BUNDLE_LIB_PATH=$_nb_lib:$_nb_lib/openmpi/lib:$_nb_lib/pmix2/lib
# CMake: the Debian multiarch folder is searched only where CMake knows that layout, so name it.
export NEFTUNE_BUNDLE_PREFIX_PATH=$_nb_usr\;$_nb_lib/cmake\;$_nb_usr/share/cmake
export NEFTUNE_BUNDLE_PKG_CONFIG_DIRS=$_nb_lib/pkgconfig:$_nb_usr/share/pkgconfig:$_nb_lib/openmpi/lib/pkgconfig
unset _nb_usr _nb_lib
