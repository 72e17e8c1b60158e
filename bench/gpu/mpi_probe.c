/* MPI_Init without a launcher (a singleton): what a 1-rank neftune needs from the bundle's Open MPI.
 * Prints the world size and the library's version; bench/gpu/check.sh builds and runs it. */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char** argv) {
  int provided = 0, rank = -1, size = -1, len = 0;
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Get_library_version(version, &len);
  double one = 1.0, sum = 0.0;
  MPI_Allreduce(&one, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  for (int i = 0; i < len; ++i)
    if (version[i] == ',' || version[i] == '\n') version[i] = '\0';
  printf("rank %d of %d, allreduce %.0f, thread level %d, %s\n", rank, size, sum, provided, version);
  MPI_Finalize();
  return rank == 0 && size == 1 && sum == 1.0 && provided >= MPI_THREAD_FUNNELED ? 0 : 1;
}
