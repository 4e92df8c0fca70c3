# install.cmake: the install steps whose paths depend on the prefix chosen at
# install time (`cmake --install --prefix`, or the Debian package's /usr):
# the systemd unit, whose ExecStart names the installed herald and config
# file, and the example config file, which goes to /etc for the /usr prefix
# and to PREFIX/etc otherwise. Run by cmake_install.cmake after
# CMakeLists.txt has set HERALD_SOURCE_DIR and HERALD_BINARY_DIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
	set(HERALD_ETC "/etc/herald")
else()
	set(HERALD_ETC "${CMAKE_INSTALL_PREFIX}/etc/herald")
endif()
set(HERALD_BIN "${CMAKE_INSTALL_PREFIX}/bin/herald")
set(HERALD_CONF "${HERALD_ETC}/herald.conf")
# One unit file per destination: two installs may run at once (the tests).
string(MD5 HERALD_DEST "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
set(HERALD_UNIT "${HERALD_BINARY_DIR}/dist/unit-${HERALD_DEST}/herald.service")
configure_file("${HERALD_SOURCE_DIR}/dist/herald.service.in" "${HERALD_UNIT}" @ONLY)
# file(INSTALL) puts $DESTDIR in front of these itself.
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
	FILES "${HERALD_UNIT}")
file(INSTALL DESTINATION "${HERALD_ETC}" TYPE FILE FILES "${HERALD_SOURCE_DIR}/dist/herald.conf")
