# The CUDA backend (-DOVIS_CUDA=ON): src/ops/cuda/*.cu compiled by nvcc into ovis_lib, linked
# against the CUDA runtime, cuBLAS/cuBLASLt and cuDNN 9 of the toolkit.
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "-DOVIS_CUDA=ON needs nvcc (CUDA 12.4 or newer) on the PATH or "
                      "CMAKE_CUDA_COMPILER set")
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
find_path(OVIS_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV CUDNN_ROOT
          PATH_SUFFIXES include)
find_library(OVIS_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} ENV CUDNN_ROOT
             PATH_SUFFIXES lib lib64)
if(NOT OVIS_CUDNN_INCLUDE_DIR OR NOT OVIS_CUDNN_LIBRARY)
  message(FATAL_ERROR "-DOVIS_CUDA=ON needs cuDNN 9 (cudnn.h and libcudnn); set CUDNN_ROOT")
endif()

# sm_XX machine code for every listed architecture, plus PTX of the last one.
set(_archs "")
foreach(a ${OVIS_CUDA_ARCHS})
  list(APPEND _archs "${a}-real")
endforeach()
list(GET OVIS_CUDA_ARCHS -1 _last)
list(APPEND _archs "${_last}-virtual")
message(STATUS "CUDA backend: nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${_archs}")

file(GLOB OVIS_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/ops/cuda/*.cu)
target_sources(ovis_lib PRIVATE ${OVIS_CUDA_SOURCES})
# CMake 3.25 does not know nvcc's C++20 flags (nvcc 12+ has them): tell it.
if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
set_target_properties(ovis_lib PROPERTIES CUDA_ARCHITECTURES "${_archs}" CUDA_STANDARD 20
                                          CUDA_STANDARD_REQUIRED ON CUDA_EXTENSIONS OFF)
target_compile_options(ovis_lib PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo -Xcompiler=-Wall,-Wno-unused-parameter>
    $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<CONFIG:Release>>:-O3>)
target_include_directories(ovis_lib PRIVATE ${OVIS_CUDNN_INCLUDE_DIR})
target_link_libraries(ovis_lib PUBLIC CUDA::cudart CUDA::cublasLt CUDA::cublas ${OVIS_CUDNN_LIBRARY})
# Only the backend registry needs to know; every other object stays identical to a CPU-only build.
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/ops/registry.cpp PROPERTIES
                            COMPILE_DEFINITIONS OVIS_CUDA=1)
